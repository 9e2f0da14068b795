#!/usr/bin/env python3
"""Launch/stop cycles of a 2-rank job through the real DeepSpeed launcher (benches/launch_cycles.sh).

Per cycle: `dpgui launch --gpus 0,1 --port auto` (the stand-in checkout, a very long epoch), wait
until rank 0's log has its first `steps:` line, stop (`dpgui stop ID --json`: SIGINT, grace,
SIGTERM, grace, SIGKILL; or `--kill --yes`; or `--save`), wait for the job's supervisor to exit,
then count what is left on the machine: processes carrying DPGUI_JOB_ID=<id> in
/proc/*/environ (zombies apart, listed separately) and whether the job's port is still held
(LISTEN in /proc/net/tcp{,6}, and a bind test with SO_REUSEADDR like dpgui's own). After the last
cycle the same counts over every job of the run. Appends one JSON line per cycle to OUT and a final
summary line.

Usage: launch_cycles.py --dpgui BIN --venv VENV --checkout DIR --extensions DIR --work DIR
                        --out FILE [--cycles 50] [--mixed 10] [--step-seconds 0.2]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

TAG = b"DPGUI_JOB_ID="


def tagged_processes(ids):
    """{job id: [(pid, state)]} for live processes whose environment has DPGUI_JOB_ID in ids."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{d}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        for var in env.split(b"\0"):
            if var.startswith(TAG):
                jid = var[len(TAG):].decode(errors="replace")
                if jid in ids:
                    out.setdefault(jid, []).append((int(d), state))
    return out


def listening(port):
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def bindable(port):
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
        except OSError as e:
            if fam == socket.AF_INET6 and e.errno in (97, 99):  # no IPv6 here
                continue
            return False
        finally:
            s.close()
    return True


def alive(pid, start_ticks):
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(rest[19]) == start_ticks and rest[0] != "Z"


def main():
    ap = argparse.ArgumentParser()
    for k in ("dpgui", "venv", "checkout", "extensions", "work", "out"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--mixed", type=int, default=10)
    ap.add_argument("--step-seconds", type=float, default=0.2)
    ap.add_argument("--interrupt-grace", type=float, default=2)
    ap.add_argument("--terminate-grace", type=float, default=2)
    a = ap.parse_args()

    w = a.work
    os.makedirs(f"{w}/config/dpgui", exist_ok=True)
    with open(f"{w}/config/dpgui/config.toml", "w") as f:
        f.write(f"job_interrupt_grace_secs = {a.interrupt_grace}\n"
                f"job_terminate_grace_secs = {a.terminate_grace}\n")
    with open(f"{w}/dataset.toml", "w") as f:
        f.write("resolutions = [512]\n")
    cfg = f"{w}/train.toml"
    with open(cfg, "w") as f:
        f.write(f"output_dir = '{w}/out'\ndataset = '{w}/dataset.toml'\nepochs = 2\n"
                "save_every_n_epochs = 1\nmicro_batch_size_per_gpu = 1\n\n[model]\n"
                "type = 'sdxl'\ndtype = 'bfloat16'\n")
    env = dict(os.environ)
    for k in ("DPGUI_DIFFUSION_PIPE", "DPGUI_PYTHON", "NO_COLOR"):
        env.pop(k, None)
    env.update({
        "XDG_STATE_HOME": f"{w}/state",
        "XDG_CONFIG_HOME": f"{w}/config",
        "PATH": f"{a.venv}/bin:" + env.get("PATH", ""),
        "VIRTUAL_ENV": a.venv,
        "TORCH_EXTENSIONS_DIR": a.extensions,
        "DS_ACCELERATOR": "cpu",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    })
    base = [a.dpgui, "--diffusion-pipe", a.checkout, "--python", a.venv]

    def dpgui(*args, timeout=600):
        p = subprocess.run(base + list(args), env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    kinds = ["stop"] * a.cycles + [("kill", "save")[i % 2] for i in range(a.mixed)]
    ids, ports = [], []
    out = open(a.out, "a")
    for n, kind in enumerate(kinds, 1):
        rec = {"cycle": n, "kind": kind}
        t0 = time.monotonic()
        rc, so, se = dpgui("launch", "--config", cfg, "--gpus", "0,1", "--port", "auto",
                           "--env", "DP_TEST_STEPS_PER_EPOCH=100000",
                           "--env", f"DP_TEST_STEP_SECONDS={a.step_seconds}")
        if rc != 0:
            rec.update(error=f"launch exited {rc}: {se.strip()[-2000:]}")
            out.write(json.dumps(rec) + "\n")
            out.flush()
            print(f"cycle {n}: launch failed: {se.strip()[-500:]}", file=sys.stderr)
            continue
        jid = so.strip().splitlines()[-1]
        ids.append(jid)
        rec["job"] = jid
        jdir = f"{w}/state/dpgui/jobs/{jid}"
        rec["launch_s"] = time.monotonic() - t0
        # Rank 0's first step.
        deadline = time.monotonic() + 300
        first = None
        journal = {}
        while time.monotonic() < deadline:
            try:
                journal = json.load(open(f"{jdir}/journal.json"))
            except (OSError, ValueError):
                pass
            try:
                logs = [x for x in os.listdir(f"{jdir}/ranks") if x.endswith("_rank0.log")]
            except OSError:
                logs = []
            if logs and b"steps: " in open(f"{jdir}/ranks/{logs[0]}", "rb").read():
                first = time.monotonic()
                break
            if journal.get("ended"):
                break
            time.sleep(0.05)
        port = journal.get("port")
        rec["port"] = port
        if port:
            ports.append(port)
        if first is None:
            rec["error"] = f"no first step (journal: {journal.get('state')} {journal.get('reason')})"
        else:
            rec["first_step_s"] = first - t0
        before = tagged_processes({jid}).get(jid, [])
        rec["processes_before"] = len(before)
        rec["port_listening_before"] = bool(port) and listening(port)
        t1 = time.monotonic()
        args = {"stop": ["stop", jid, "--json"],
                "kill": ["stop", jid, "--kill", "--yes", "--json"],
                "save": ["stop", jid, "--save", "--json"]}[kind]
        rc, so, se = dpgui(*args)
        rec["stop_s"] = time.monotonic() - t1
        rec["stop_rc"] = rc
        if rc != 0:
            rec["stop_stderr"] = se.strip()[-2000:]
        try:
            rep = json.loads(so)
            rec["report_remaining"] = len(rep.get("remaining") or [])
            rec["report_port_free"] = rep.get("port_free")
            lad = rep.get("ladder") or {}
            fates = {}
            for o in lad.get("outcomes") or []:
                fates[o.get("fate")] = fates.get(o.get("fate"), 0) + 1
            rec["fates"] = fates
            rec["escalated"] = lad.get("escalated")
            rec["final_state"] = rep.get("final_state")
        except ValueError:
            rec["stop_output"] = (so + se)[-2000:]
        # The supervisor records the end and exits.
        sup = (journal.get("supervisor") or {})
        try:
            sup = json.load(open(f"{jdir}/journal.json")).get("supervisor") or sup
        except (OSError, ValueError):
            pass
        deadline = time.monotonic() + 120
        while sup and alive(sup["pid"], sup["start_ticks"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        rec["supervisor_exit_s"] = time.monotonic() - t1
        rec["supervisor_alive"] = bool(sup) and alive(sup["pid"], sup["start_ticks"])
        try:
            j = json.load(open(f"{jdir}/journal.json"))
            rec["state"] = j.get("state")
            rec["reason"] = j.get("reason")
        except (OSError, ValueError):
            pass
        left = tagged_processes({jid}).get(jid, [])
        rec["leftover"] = len([p for p in left if p[1] != "Z"])
        rec["leftover_zombies"] = len([p for p in left if p[1] == "Z"])
        rec["leftover_pids"] = left
        rec["port_listening_after"] = bool(port) and listening(port)
        rec["port_bindable_after"] = bool(port) and bindable(port)
        rec["cycle_s"] = time.monotonic() - t0
        out.write(json.dumps(rec) + "\n")
        out.flush()
        print(f"cycle {n}/{len(kinds)} {kind}: job {jid} port {port}: first step "
              f"{rec.get('first_step_s', float('nan')):.1f} s, stop {rec['stop_s']:.1f} s, "
              f"state {rec.get('state')}, leftover {rec['leftover']}, port held "
              f"{rec['port_listening_after'] or not rec['port_bindable_after']}", file=sys.stderr)
    # Everything at the end.
    time.sleep(1)
    left = tagged_processes(set(ids))
    held = sorted({p for p in ports if listening(p) or not bindable(p)})
    summary = {
        "summary": True,
        "jobs": len(ids),
        "leftover_total": sum(1 for v in left.values() for p in v if p[1] != "Z"),
        "leftover_zombies_total": sum(1 for v in left.values() for p in v if p[1] == "Z"),
        "leftover_by_job": {k: v for k, v in left.items()},
        "ports_used": sorted(set(ports)),
        "ports_held": held,
    }
    out.write(json.dumps(summary) + "\n")
    out.close()
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
