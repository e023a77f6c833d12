"""Where a re-run's time goes, for both entry points, before and after a change.

    python bench/profile.py [--rounds N] [--before REV]

Applies this role and the role at REV (default: the commit before the
performance work, BEFORE_CUTS) side by side, then runs in alternated rounds a
one-`ping` playbook, each version's main entry point re-run and each
version's `use` first run and re-run, and prints the median seconds of
every part of each run:

- ansible-playbook start-up, until the first task; each task until the
  next one starts (bench/callback_plugins/bench_task_times.py); recap;
- within the module task, the module's process (the interpreter is a
  wrapper that times it) and the rest (Ansible building and sending the
  module, templating its arguments, reading its result);
- within the module's process, from `python -X importtime` of the very
  payload Ansible ran: Ansible's own imports, the role's (module_utils and
  what they import: the docker SDK, cryptography, bcrypt), and the rest
  (interpreter start, the module's work, exit).

Every file `use` touches and dockerd's mirrors are put back after each
first run and at the end; containers are named bench_prof_*, ports are
16020-16035; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import run as bench  # bench/run.py
from machine import Snapshot, watched_paths

BEFORE_CUTS = "f1d2dad"
# The one module task of each playbook (its name's start).
MODULE_TASKS = ("Check the input", "Trust the", "Run one")
PORTS = {"after": (16030, 16031), "before": (16032, 16033)}
PLAYBOOK = """- hosts: localhost
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Apply the role
      ansible.builtin.include_role:
        name: {role}
{extra}"""
FACTS = """    - name: Write the fact
      ansible.builtin.copy:
        content: "{{{{ {{'buildset_registry': buildset_registry}} | to_json }}}}"
        dest: {path}
        mode: "0600"
      no_log: true
"""
WRAPPER = """#!/bin/sh
start=$(date +%s.%N)
"{python}" "$@"
rc=$?
echo "$start $(date +%s.%N) $*" >> "{log}"
exit $rc
"""


class Timed:
    """Runs playbooks with a timing interpreter and keeps each module payload."""

    def __init__(self, res):
        self.dir = res.tempdir("profile")
        self.log = os.path.join(self.dir, "python.log")
        self.python = os.path.join(self.dir, "python")
        with open(self.python, "w") as f:
            f.write(WRAPPER.format(python=sys.executable, log=self.log))
        os.chmod(self.python, 0o755)
        self.remote_tmp = os.path.join(self.dir, "remote")
        self.runs = 0

    def lines(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def run(self, playbook, args, changed, keep=None):
        """{part: seconds} of one run; keep: a path to copy the module's payload to."""
        self.runs += 1
        marks = os.path.join(self.dir, "marks-%d.jsonl" % self.runs)
        before = len(self.lines())
        extra = ["-e", "ansible_python_interpreter=" + self.python]
        env = dict(os.environ, ANSIBLE_REMOTE_TMP=self.remote_tmp)
        if keep:
            env["ANSIBLE_KEEP_REMOTE_FILES"] = "1"
        started = time.time()
        seconds, proc = bench.ansible_playbook(playbook, [*args, *extra], marks, self.dir, env=env)
        if proc.returncode != 0:
            raise bench.BenchError("%s failed:\n%s%s" % (playbook, proc.stdout, proc.stderr))
        recap = bench.parse_recap(proc.stdout)
        if changed is not None and recap.get("changed") != changed:
            raise bench.BenchError("%s: changed=%s, want %s" % (playbook, recap.get("changed"), changed))
        parts = dict(bench.task_durations(marks, started, started + seconds))
        modules = [line.split() for line in self.lines()[before:] if "AnsiballZ_" in line]
        module_task = next((name for name in parts if name.startswith(MODULE_TASKS)), None)
        if module_task and modules:
            process = sum(float(end) - float(start) for start, end, *_ in modules)
            parts["module task: its process"] = process
            parts["module task: the rest (build, send, template, result)"] = parts.pop(module_task) - process
            if keep:
                payload = modules[-1][2]
                subprocess.run(["cp", payload, keep], check=True)
        subprocess.run(["rm", "-rf", self.remote_tmp], check=False)
        parts["total"] = seconds
        return parts


def import_split(payload, rounds):
    """Median seconds of the module process's parts, from -X importtime of payload."""
    totals = {"process": [], "Ansible's imports": [], "the role's imports": []}
    for _ in range(rounds):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-X", "importtime", payload], capture_output=True, text=True)
        totals["process"].append(time.monotonic() - start)
        ours = ansible = 0
        for line in proc.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
            if not match or match.group(2):  # top-level imports only
                continue
            cumulative, name = int(match.group(1)) / 1e6, match.group(3)
            if name.startswith("ansible.module_utils.buildset_registry") or name == "ansible.legacy":
                ours += cumulative
            elif name.startswith(("ansible", "encodings", "site", "zipimport", "base64", "datetime", "zipfile")):
                ansible += cumulative
        totals["Ansible's imports"].append(ansible)
        totals["the role's imports"].append(ours)
    med = {k: statistics.median(v) for k, v in totals.items()}
    med["the rest (start, work, exit)"] = med["process"] - med["Ansible's imports"] - med["the role's imports"]
    return med


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=BEFORE_CUTS)
    parser.add_argument("--main-only", action="store_true", help="the main entry point and ping only")
    args = parser.parse_args(argv)
    res = bench.Resources()
    try:
        bench.preflight()
        bench.start_upstream(res)
        timed = Timed(res)
        roles = {"after": bench.ROLE_DIR, "before": bench.old_role(res, args.before)}
        instances, facts = {}, {}
        for version, role_dir in roles.items():
            bench.INSTANCES["bench_prof_%s_" % version] = PORTS[version]
            instance = bench.RoleInstance(res, "bench_prof_%s_" % version, role_dir=role_dir)
            instance.apply("applying the role (%s)" % version)
            instances[version] = instance
            facts_file = os.path.join(instance.dir, "facts.json")
            playbook = os.path.join(timed.dir, "facts-%s.yml" % version)
            with open(playbook, "w") as f:
                f.write(PLAYBOOK.format(role=role_dir, extra=FACTS.format(path=facts_file)))
            timed.run(playbook, instance.playbook.args, None)
            with open(facts_file) as f:
                facts[version] = facts_file, json.load(f)["buildset_registry"]
        home = os.path.expanduser("~")
        paths = [p for _, fact in facts.values() for p in watched_paths(fact, bench.NAMESPACES, home)]
        snap = Snapshot(list(dict.fromkeys(paths)))
        res.snapshots.append(snap)
        plays = {"ping": (os.path.join(bench.BENCH_DIR, "reference.yml"), ["--tags", "ping"], None)}
        for version, role_dir in roles.items():
            plays["main re-run, " + version] = (instances[version].playbook.path, instances[version].playbook.args, 0)
            use = os.path.join(timed.dir, "use-%s.yml" % version)
            with open(use, "w") as f:
                f.write(PLAYBOOK.format(role=role_dir, extra="        tasks_from: use\n"))
            vars_ = ["-e", "@" + facts[version][0]]
            plays["use first run, " + version] = (use, vars_, 1)
            plays["use re-run, " + version] = (use, vars_, 0)
        parts, payloads = {}, {}
        units = [[k] for k in plays if not k.startswith("use")]
        if not args.main_only:
            units += [["use first run, " + v, "use re-run, " + v] for v in roles]
        for i in range(args.rounds):
            bench.log("profile round %d/%d" % (i + 1, args.rounds))
            for unit in bench.rotated(units, i):
                for key in unit:
                    if key.startswith("use first"):
                        snap.restore()
                    keep = None
                    if i == 0:
                        keep = payloads[key] = os.path.join(timed.dir, re.sub(r"\W+", "_", key) + ".py")
                    for part, seconds in timed.run(*plays[key], keep=keep).items():
                        parts.setdefault(key, {}).setdefault(part, []).append(seconds)
        snap.restore()
        splits = {}
        for key, payload in payloads.items():
            if key.startswith("use") and args.main_only:
                continue
            if key.startswith("use first") or not os.path.exists(payload):
                continue
            if key.startswith("use re-run"):
                # A re-run of its payload needs the first run done, and is taken back after.
                timed.run(*plays[key.replace("re-run", "first run")])
            splits[key] = import_split(payload, args.rounds)
            snap.restore()
    except bench.BenchError as e:
        print("PROFILE FAILED: %s" % e, file=sys.stderr)
        return 1
    finally:
        res.cleanup()
    print(render(parts, splits, args))
    return 0


def render(parts, splits, args):
    keys = list(parts)
    names = list(dict.fromkeys(name for key in keys for name in parts[key]))
    names = [n for n in names if n != "total"] + ["total"]
    out = ["Median seconds of %d alternated rounds (%s vs %s):" % (args.rounds, "this tree", args.before), ""]
    out += ["| part | %s |" % " | ".join(keys), "| --- |%s" % (" ---: |" * len(keys))]
    for name in names:
        cells = [("%.3f" % statistics.median(parts[k][name])) if name in parts[k] else "-" for k in keys]
        out.append("| %s | %s |" % (name, " | ".join(cells)))
    for key, split in splits.items():
        out += ["", "Module process of %s, from -X importtime: %s" % (key, ", ".join(
                "%s %.3f s" % item for item in split.items()))]  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
