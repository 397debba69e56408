#!/usr/bin/env python3
"""Failover time as four-letter words see it, for Apache ZooKeeper and ensemble alike.

Starts a 3-server ensemble, finds the leader with `srvr`, kills it with SIGKILL and measures the
time until the two survivors report `Mode: leader` and `Mode: follower` again. Repeats ROUNDS
times with fresh state. Usage:

    scripts/failover-4lw.py zookeeper [ROUNDS]   # Debian's Apache ZooKeeper 3.8 (shared/tools/apache-zk.sh)
    scripts/failover-4lw.py ensemble [ROUNDS]    # target/release/ensemble, same ports and ticks
"""
import os, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = 12180  # client ports 12181-12183, as apache-zk.sh uses
TICK = 2000


def mode(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        s.sendall(b"srvr")
        out = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            out += c
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return "not serving"
    except OSError:
        return "down"


def wait(cond, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def start_zookeeper(d):
    tool = os.path.join(ROOT, "..", "shared", "tools", "apache-zk.sh")
    subprocess.run(["bash", tool, "start", "3", d], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, APACHE_ZK_BASE_PORT=str(BASE), APACHE_ZK_TICK_MS=str(TICK)))
    return {i: int(open(os.path.join(d, f"n{i}", "pid")).read()) for i in (1, 2, 3)}


def start_ensemble(d):
    exe = os.path.join(ROOT, "target", "release", "ensemble")
    cfg = os.path.join(d, "ensemble.toml")
    with open(cfg, "w") as f:
        f.write(f"[ensemble]\ntick_ms = {TICK}\ninit_limit = 5\nsync_limit = 2\n")
        f.write(f'[client]\nfour_letter_words = ["*"]\n[storage]\ndata_dir = "{d}/data"\n')
        for i in (1, 2, 3):
            f.write(f'[[servers]]\nid = {i}\nhost = "127.0.0.1"\npeer_port = {BASE + 10 + i}\nclient_port = {BASE + i}\n')
    pids = {}
    for i in (1, 2, 3):
        log = open(os.path.join(d, f"server-{i}.log"), "w")
        pids[i] = subprocess.Popen([exe, "node", "--config", cfg, "--id", str(i)], stderr=log).pid
    return pids


def main():
    which = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    gaps = []
    for r in range(rounds):
        d = tempfile.mkdtemp(prefix=f"failover-{which}-")
        pids = start_zookeeper(d) if which == "zookeeper" else start_ensemble(d)
        try:
            if not wait(lambda: sorted(mode(BASE + i) for i in (1, 2, 3)) == ["follower", "follower", "leader"]):
                sys.exit(f"{which}: no leader after 120 s")
            leader = next(i for i in (1, 2, 3) if mode(BASE + i) == "leader")
            rest = [i for i in (1, 2, 3) if i != leader]
            t0 = time.monotonic()
            os.kill(pids[leader], signal.SIGKILL)
            if not wait(lambda: sorted(mode(BASE + i) for i in rest) == ["follower", "leader"]):
                sys.exit(f"{which}: no new leader 120 s after the kill")
            gap = (time.monotonic() - t0) * 1000
            gaps.append(gap)
            print(f"  round {r + 1}: killed leader {leader}, serving again after {gap:.0f} ms")
        finally:
            for p in pids.values():
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
            shutil.rmtree(d, ignore_errors=True)
    gaps.sort()
    print(f"{which}: tick {TICK} ms, initLimit 5, syncLimit 2: min {gaps[0]:.0f} ms, "
          f"median {gaps[len(gaps) // 2]:.0f} ms, max {gaps[-1]:.0f} ms over {rounds} rounds")


if __name__ == "__main__":
    main()
