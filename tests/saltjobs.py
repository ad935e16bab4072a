"""`salt` for the tests, bounded: publish a job, then read the returns from the master's
job cache.

Why not the `salt` CLI: it learns of each return from an event on the master's bus, and
when it misses one it waits until its `--timeout` before it asks the minion again. In
one `make test` run a highstate's returns were all in the job cache after 32 s and the
CLI sat on them until its 600 s timeout. The job cache is written by the master itself
when a return arrives, so reading it cannot miss one: a call here ends as soon as every
targeted minion has returned, and a minion that really stalls is reported with the job
id and what it is still running.

Salt 3007's minion now and then loses a job under load: it never runs it, or its return
never arrives, and find_job then says it is not running it. Sometimes its main loop
stops altogether (no beacon, no job, no answer to find_job) while the unit stays
active. Either way the job is run once more, after restarting a minion that does not
answer at all (as `pgha-lab` does at start-up); each time is printed in the test output.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field


@dataclass
class JobResult:
    """The parts of pytest-salt-factories' ProcessResult the tests use, plus the job id."""
    jid: str
    data: dict
    returncode: int
    missing: list[str] = field(default_factory=list)
    stderr: str = ""

    @property
    def stdout(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True, default=str)


class SaltJobs:
    def __init__(self, master_config_file: str):
        import salt.client  # heavy: only once the master runs
        self.local = salt.client.LocalClient(c_path=master_config_file)
        cache = self.local.opts["master_job_cache"]
        self._get_jid = self.local.returners[f"{cache}.get_jid"]

    def run(self, fun: str, *args: str, minion_tgt: str, tgt_type: str = "glob",
            _timeout: float = 120, poll: float = 0.2, recover: bool = True) -> JobResult:
        """Run *fun* with CLI-style *args* ("key=value" for keyword arguments) on the
        targeted minions; wait up to *_timeout* seconds for every one of them. With
        *recover*, a wedged minion is restarted and the job run once more."""
        result = self._run(fun, args, minion_tgt, tgt_type, _timeout, poll)
        if not recover or not result.missing:
            return result
        found = self._find_job(result.jid, result.missing) or {}
        if any(found.get(m) for m in result.missing):
            return result  # still running it: a real stall, reported as it is
        from pgha_lab import master as lab_master
        silent = sorted(set(result.missing) - set(found))
        print(f"saltjobs: no return from {', '.join(result.missing)} for job {result.jid} ({fun}), "
              f"and not running it; {'restarting the wedged salt-minion on ' + ', '.join(silent) + ' and ' if silent else ''}"
              "running the job once more")
        if silent:
            lab_master.restart_minions(silent)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self._run("test.ping", (), ",".join(silent), "list", 5, poll).missing:
                pass
        return self._run(fun, args, minion_tgt, tgt_type, _timeout, poll)

    def _run(self, fun, args, minion_tgt, tgt_type, _timeout, poll) -> JobResult:
        import salt.utils.args
        pub = self.local.run_job(minion_tgt, fun, arg=salt.utils.args.parse_input(list(args)),
                                 tgt_type=tgt_type, timeout=15)
        if not pub or "jid" not in pub:
            return JobResult("", {}, 1, stderr=f"salt {fun} on {minion_tgt}: the master did "
                                                "not accept the job")
        jid, expected = pub["jid"], set(pub.get("minions") or [])
        if not expected:
            return JobResult(jid, {}, 1, stderr=f"salt {fun}: no minion matches {minion_tgt!r}")
        deadline = time.monotonic() + _timeout
        while True:
            returns = self._get_jid(jid)
            if expected <= set(returns) or time.monotonic() >= deadline:
                break
            time.sleep(poll)
        data = {minion: ret.get("return") for minion, ret in returns.items()}
        failed = [m for m, ret in returns.items()
                  if ret.get("retcode", 0) or ret.get("success") is False]
        missing = sorted(expected - set(returns))
        stderr = ""
        if missing:
            stderr = (f"salt {fun} on {minion_tgt}: no return from {', '.join(missing)} "
                      f"within {_timeout:.0f}s (job {jid}); {self._still_running(jid, missing)}")
        return JobResult(jid, data, 1 if failed or missing else 0, missing, stderr)

    def _find_job(self, jid: str, minions: list[str]) -> dict | None:
        try:
            return self.local.cmd(minions, "saltutil.find_job", [jid], tgt_type="list", timeout=10)
        except Exception:  # noqa: BLE001 - only for the report
            return None

    def _still_running(self, jid: str, minions: list[str]) -> str:
        """What the silent minions say about the job, for the failure message."""
        found = self._find_job(jid, minions)
        if found is None:
            return "asking them failed"
        running = sorted(m for m, info in found.items() if info)
        silent = sorted(set(minions) - set(found))
        return (f"still running it: {', '.join(running) or 'none'}; "
                f"not answering at all: {', '.join(silent) or 'none'}")

    def running(self, tgt: str = "*") -> dict:
        """{minion: [jobs it is running, with their arguments]}: for stall reports."""
        try:
            found = self.local.cmd(tgt, "saltutil.running", timeout=10)
        except Exception as exc:  # noqa: BLE001 - only for the message
            return {"error": str(exc)}
        def described(job: dict) -> str:
            args = f" {job['arg']}" if job.get("arg") else ""
            return f"{job.get('fun')}{args} (job {job.get('jid')})"
        return {m: [described(j) for j in jobs] for m, jobs in sorted(found.items()) if jobs}
