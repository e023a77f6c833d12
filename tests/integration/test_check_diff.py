"""--check --diff on the role: what would change in the certificate, the
htpasswd entry and each container, without a secret, and nothing changed."""

from harness import docker

from ansible.module_utils.buildset_registry.registry.login import derive_tokens


def test_check_diff_shows_each_part_without_secrets(registry):
    password = "diff-s3cret-Pw"
    proc, _ = registry.apply({"buildset_registry_password": password}, check=True, diff=True, verbosity=3)
    assert proc.returncode == 0, proc.output[-3000:]
    out = proc.output
    assert "+++ after: %s" % registry.paths["cert"] in out
    assert "+subjectAltName: DNS:localhost, IP:127.0.0.1, IP:::1" in out
    assert "+htpasswd for user zuul: hash updated" in out
    push, proxy, front = registry.containers
    for kind, name in (("push", push), ("proxy", proxy), ("front", front)):
        assert "+%s container %s: created" % (kind, name) in out
    # The front's configuration holds the hash and the tokens: never shown.
    tokens = derive_tokens("zuul", password)
    assert tokens["write"] not in out and tokens["read"] not in out
    assert password not in out and "$2y$" not in out and "PRIVATE KEY" not in out
    assert not registry.container_ids()

    # After a real run: a stored password stays out of a check run's output too.
    registry.apply_ok()
    with open(registry.paths["password"]) as f:
        stored = f.read().strip()
    proc, _ = registry.apply(check=True, diff=True, verbosity=3)
    assert proc.returncode == 0, proc.output[-3000:]
    assert stored not in proc.output
    assert derive_tokens("zuul", stored)["write"] not in proc.output
    # Nothing would change: no part shows a difference.
    assert "+++ after: containers" not in proc.output and "+++ after: %s" % registry.paths["cert"] not in proc.output
    assert (
        "Check the input, make the certificate and htpasswd, run the registries and the front and wait until they answer"
        in proc.output
    )
    for name in (push, proxy, front):
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
