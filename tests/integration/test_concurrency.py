"""Parallel pushes to the push endpoint while others pull the same names
through the proxy endpoint: every pull either finds nothing yet or gets the
complete, very image that was pushed."""

import concurrent.futures
import re
import threading
import time
import uuid

from clients import Clients, make_image, pulled_matches

IMAGES = 10
# What a pull may say while the push has not finished: the tag (or the
# name) is not there yet, said when reading the manifest. Anything else is
# a fault: a missing blob (the half-written image this test exists to
# catch, which also says "not found" and 404), a broken manifest.
NOT_YET = re.compile(r"reading manifest \S+ in \S+: (manifest|name) unknown", re.I)


def not_yet(stderr):
    return bool(NOT_YET.search(stderr)) and "blob" not in stderr.lower()


def test_parallel_pushes_and_pulls_never_serve_half_written_images(shared_registry, tmp_path):
    c = Clients(shared_registry.facts, tmp_path)
    run_id = uuid.uuid4().hex[:6]
    images = {
        f"buildset/par-{run_id}-{i}:1": make_image(tmp_path / f"src{i}", size=256 * 1024 + i) for i in range(IMAGES)
    }
    pushed = {}
    bad = []
    early = []  # pulls that raced a push: (ref, outcome, pushes still running when it started)
    done = threading.Event()

    def push(ref):
        proc = c.push(images[ref], "push", ref)
        pushed[ref] = proc
        return proc

    def poll(ref, n):
        """Pull ref through the proxy over and over until its push is done."""
        attempt = 0
        while not done.is_set():
            attempt += 1
            dest = tmp_path / f"race-{n}-{attempt}"
            running = IMAGES - len(pushed)
            proc = c.pull("proxy", ref, dest)
            if proc.returncode == 0:
                problems = pulled_matches(dest, images[ref])
                early.append((ref, "broken" if problems else "complete", running))
                if problems:
                    bad.append((ref, problems))
            elif not_yet(proc.stderr):
                early.append((ref, "not yet", running))
            else:
                bad.append((ref, proc.stderr.strip()[-500:]))

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=IMAGES + 4) as pool:
        pollers = [pool.submit(poll, ref, n) for n, ref in enumerate(list(images)[:4])]
        pushes = [pool.submit(push, ref) for ref in images]
        for f in pushes:
            f.result()
        done.set()
        for f in pollers:
            f.result()
    print(
        f"{IMAGES} parallel pushes with racing pulls took {time.monotonic() - start:.1f} s; "
        f"racing pulls: {len(early)} ({sum(1 for _, r, _ in early if r == 'complete')} complete)"
    )

    failed = {ref: p.stderr for ref, p in pushed.items() if p.returncode != 0}
    assert not failed
    assert not bad, bad
    # A race happened: pulls found names not pushed yet, and pulls got
    # complete images while other pushes were still running.
    raced = {outcome for _, outcome, running in early if running}
    assert {"not yet", "complete"} <= raced, f"no race: pulls during the pushes saw only {sorted(raced)}"

    # Now every image pulls, in parallel, complete and bit for bit, from both endpoints.
    def pull(ref, kind):
        dest = tmp_path / f"final-{kind}-{ref.replace('/', '_')}"
        proc = c.pull(kind, ref, dest)
        assert proc.returncode == 0, proc.stderr
        return ref, kind, pulled_matches(dest, images[ref])

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda a: pull(*a), [(ref, kind) for ref in images for kind in ("proxy", "push")]))
    assert [r for r in results if r[2]] == []
    for ref, image in images.items():
        assert c.digest("proxy", ref) == image.digest
