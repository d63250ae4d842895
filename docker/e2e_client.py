#!/usr/bin/env python3
"""HTTP and SQLite helpers for docker/e2e.sh: each subcommand checks one thing and exits non-zero,
saying why, when it does not hold. Standard library only.

    e2e_client.py wait URL SECONDS
    e2e_client.py chat BASE MODEL [--strict] [--stream] [--route R] [--provider P]
                       [--trail-has S] [--trail-lacks S] [--status N]
    e2e_client.py pending BASE ROUTE SECONDS
    e2e_client.py routed BASE ROUTE SECONDS
    e2e_client.py snapshot BASE OUT.json
    e2e_client.py same-state BEFORE.json AFTER.json [--catalog-only] [IGNORED_ROUTE...]
    e2e_client.py db DIR OUT.json          (a copy of the /data volume: integrity, cooldowns, ledger)
    e2e_client.py same-db BEFORE.json AFTER.json
    e2e_client.py same-ledger BEFORE.txt AFTER.txt   (`KEY|SETTLED_REQUESTS` lines read from PostgreSQL)
    e2e_client.py load BASE SECONDS THREADS OUT.json [STOP_FILE]
    e2e_client.py rpm BASE[,BASE...] ROUTE RPM REQUESTS THREADS
                       (ROUTE's key spent through every BASE at once: exactly RPM served, no upstream 429)
    e2e_client.py lockdown-config CONFIG.yaml SERVICE...   (`compose config` output: each SERVICE locked down)
    e2e_client.py locked-down INSPECT.json CONFIG.yaml SERVICE   (`docker inspect` of SERVICE's container)
"""

import http.client
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


def fail(message):
    print(f"  {message}", file=sys.stderr)
    sys.exit(1)


def request(url, body=None, headers=None, timeout=30):
    """(status, headers dict with lower-case names, body text); HTTP errors are answers too."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def get_json(url):
    status, _, text = request(url)
    if status != 200:
        fail(f"GET {url} answered {status}: {text[:300]}")
    return json.loads(text)


def wait(url, seconds):
    deadline = time.time() + float(seconds)
    last = "no answer"
    while time.time() < deadline:
        try:
            status, _, text = request(url, timeout=3)
            if status == 200:
                return
            last = f"{status} {text[:200]}"
        except OSError as err:
            last = str(err)
        time.sleep(0.25)
    fail(f"{url} not ready after {seconds}s: {last}")


def chat(base, model, strict=False, stream=False):
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello from the e2e run."}],
            "max_tokens": 16}
    if stream:
        body["stream"] = True
    headers = {"x-freerouter-strict": "true"} if strict else {}
    status, h, text = request(f"{base}/v1/chat/completions", body, headers)
    return {"status": status, "route": h.get("x-gateway-route"), "provider": h.get("x-gateway-provider"),
            "trail": h.get("x-gateway-trail", ""), "attempts": h.get("x-gateway-attempts"),
            "body": text}


def cmd_chat(args):
    base, model, rest = args[0], args[1], args[2:]
    flags = {"--strict": False, "--stream": False}
    expect = {}
    i = 0
    while i < len(rest):
        if rest[i] in flags:
            flags[rest[i]] = True
            i += 1
        else:
            expect[rest[i]] = rest[i + 1]
            i += 2
    got = chat(base, model, strict=flags["--strict"], stream=flags["--stream"])
    summary = f"status={got['status']} route={got['route']} trail={got['trail']!r}"
    want_status = int(expect.get("--status", "200"))
    if got["status"] != want_status:
        fail(f"chat {model}: wanted {want_status}, got {summary}: {got['body'][:300]}")
    if "--route" in expect and got["route"] != expect["--route"]:
        fail(f"chat {model}: wanted route {expect['--route']}, got {summary}")
    if "--provider" in expect and got["provider"] != expect["--provider"]:
        fail(f"chat {model}: wanted provider {expect['--provider']}, got {summary}")
    if "--trail-has" in expect and expect["--trail-has"] not in got["trail"]:
        fail(f"chat {model}: wanted {expect['--trail-has']!r} in the trail, got {summary}")
    if "--trail-lacks" in expect and expect["--trail-lacks"] in got["trail"]:
        fail(f"chat {model}: wanted no {expect['--trail-lacks']!r} in the trail, got {summary}")
    if flags["--stream"] and got["status"] == 200 and "[DONE]" not in got["body"]:
        fail(f"chat {model}: the stream did not end with [DONE]: {got['body'][-300:]}")
    print(f"  {summary}")


def pending_add_routes(base):
    listing = get_json(f"{base}/v1/gateway/endpoint-diagnosis")
    items = listing.get("suggestions", listing) if isinstance(listing, dict) else listing
    return [s for s in items if s.get("kind") == "add_route" and s.get("status") == "pending"]


def cmd_pending(base, route, seconds):
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        found = [s["route_id"] for s in pending_add_routes(base)]
        if route in found:
            print(f"  pending add_route suggestions: {', '.join(sorted(found))}")
            return
        time.sleep(1)
    fail(f"no pending add_route for {route} after {seconds}s: {get_json(base + '/v1/gateway/endpoint-diagnosis')}")


def cmd_routed(base, route, seconds):
    """Strict requests for ROUTE until the gateway serves them from it (it reloads within ~1 s)."""
    deadline = time.time() + float(seconds)
    got = None
    while time.time() < deadline:
        got = chat(base, route, strict=True)
        if got["status"] == 200 and got["route"] == route:
            print(f"  served by {got['route']} (trail {got['trail']!r})")
            return
        time.sleep(0.5)
    fail(f"{route} not routed to after {seconds}s: last status={got['status']} route={got['route']} {got['body'][:200]}")


def snapshot(base):
    models = get_json(f"{base}/v1/gateway/models")
    routes = {r["route_id"]: {"enabled": r["enabled"], "rank": r["rank"]} for r in models["routes"]}
    usage = {}
    for provider in get_json(f"{base}/v1/gateway/providers/status")["providers"]:
        for key in provider.get("keys", []):
            usage[f"{provider['name']}/{key['key_id']}"] = key["usage"]
    return {"routes": routes, "usage": usage}


def cmd_same_state(before_path, after_path, *ignored):
    """Every route of BEFORE (but the IGNORED ones) is in AFTER as it was; no key's day use shrank
    (unless --catalog-only: with several replicas, one counts the others' live leases as spent, and
    they shrink to their use when settled)."""
    before, after = (json.load(open(p)) for p in (before_path, after_path))
    catalog_only = "--catalog-only" in ignored
    problems = []
    for route, entry in before["routes"].items():
        if route not in ignored and after["routes"].get(route) != entry:
            problems.append(f"route {route}: {entry} before, {after['routes'].get(route)} after")
    for key, used in ({} if catalog_only else before["usage"]).items():
        now = after["usage"].get(key)
        if now is None or now["day_requests"] < used["day_requests"] or now["day_tokens"] < used["day_tokens"]:
            problems.append(f"quota use of {key}: {used} before, {now} after")
    if problems:
        fail("state lost:\n    " + "\n    ".join(problems))
    if catalog_only:
        print(f"  {len(before['routes'])} routes kept")
    else:
        print(f"  {len(before['routes'])} routes and the day use of {len(before['usage'])} keys kept")


def cmd_same_ledger(before_path, after_path):
    """No key's settled requests in the PostgreSQL ledger shrank, and there were some."""
    def read(path):
        with open(path) as f:
            return {key: int(n) for key, n in (line.strip().split("|") for line in f if line.strip())}
    before, after = read(before_path), read(after_path)
    problems = [f"settled requests of {key}: {n} before, {after.get(key)} after"
                for key, n in before.items() if after.get(key, 0) < n]
    if not before:
        problems.append("no settled request to compare (the run should have made some)")
    if problems:
        fail("ledger lost:\n    " + "\n    ".join(problems))
    print(f"  settled requests kept: {after}")


def db_state(folder):
    """Opens a copy of the volume's files (WAL recovery happens on the copy) and reads the state."""
    work = tempfile.mkdtemp()
    try:
        for name in ("freerouter.db", "freerouter.db-wal"):
            try:
                shutil.copy(f"{folder}/{name}", f"{work}/{name}")
            except FileNotFoundError:
                pass
        conn = sqlite3.connect(f"{work}/freerouter.db")
        integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        now_ms = int(time.time() * 1000)
        cooldowns = {f"{p}/{k}/{r}": until for p, k, r, until in conn.execute(
            "SELECT provider, key_id, route_id, cooldown_until_ms FROM key_cooldowns WHERE cooldown_until_ms > ?",
            (now_ms,))}
        cooling_routes = {r: until for r, until in conn.execute(
            "SELECT route_id, cooldown_until_ms FROM route_health WHERE cooldown_until_ms > ?", (now_ms,))}
        # Settled use only: a live lease's row counts its whole block and shrinks to its use when
        # it settles (at shutdown too), and an unused one is deleted; what was settled stays.
        ledger = {f"{p}/{k}": n for p, k, n in conn.execute(
            "SELECT provider, key_id, SUM(requests) FROM quota_ledger WHERE settled = 1"
            " GROUP BY provider, key_id")}
        routes = conn.execute("SELECT COUNT(*) FROM routes").fetchone()[0]
        conn.close()
        return {"integrity": integrity, "key_cooldowns": cooldowns, "route_cooldowns": cooling_routes,
                "ledger": ledger, "routes": routes}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cmd_db(folder, out):
    state = db_state(folder)
    json.dump(state, open(out, "w"))
    if state["integrity"] != ["ok"]:
        fail(f"PRAGMA integrity_check: {state['integrity'][:10]}")
    print(f"  integrity_check ok; {len(state['key_cooldowns'])} key cooldowns, "
          f"{sum(state['ledger'].values())} settled requests in the ledger, {state['routes']} routes")


def cmd_same_db(before_path, after_path):
    before, after = (json.load(open(p)) for p in (before_path, after_path))
    problems = []
    if not before["key_cooldowns"]:
        problems.append("no key cooldown to compare (the run should have made one)")
    for key, until in before["key_cooldowns"].items():
        if after["key_cooldowns"].get(key, 0) < until:
            problems.append(f"cooldown {key} until {until} became {after['key_cooldowns'].get(key)}")
    for key, n in before["ledger"].items():
        if after["ledger"].get(key, 0) < n:
            problems.append(f"settled requests of {key}: {n} before, {after['ledger'].get(key)} after")
    if problems:
        fail("database state lost:\n    " + "\n    ".join(problems))
    print(f"  {len(before['key_cooldowns'])} key cooldowns and the ledger of {len(before['ledger'])} keys kept")


def cmd_load(base, seconds, threads, out, stop_file=None):
    """Chat requests from THREADS threads for SECONDS, or until STOP_FILE exists; connection errors
    (a killed gateway) count."""
    counts = {"ok": 0, "http_error": 0, "connection_error": 0}
    lock = threading.Lock()
    stop = time.time() + float(seconds)

    def going():
        return time.time() < stop and not (stop_file and os.path.exists(stop_file))

    def worker():
        while going():
            try:
                status = chat(base, "auto")["status"]
                kind = "ok" if status == 200 else "http_error"
            except (OSError, http.client.HTTPException):
                kind = "connection_error"
                time.sleep(0.05)
            with lock:
                counts[kind] += 1

    pool = [threading.Thread(target=worker) for _ in range(int(threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    json.dump(counts, open(out, "w"))
    print(f"  load: {counts}")
    if counts["ok"] == 0 or counts["connection_error"] == 0:
        fail("the load should have been served, then cut by the kill")


def upstream_attempts(base, provider):
    """{result: count} of freerouter_upstream_attempts_total for PROVIDER in BASE's /metrics."""
    status, _, text = request(f"{base}/metrics")
    if status != 200:
        fail(f"GET {base}/metrics answered {status}")
    counts = {}
    for line in text.splitlines():
        if not line.startswith("freerouter_upstream_attempts_total{") or f'provider="{provider}"' not in line:
            continue
        labels, value = line.rsplit(" ", 1)
        result = labels.split('result="', 1)[1].split('"', 1)[0]
        counts[result] = counts.get(result, 0) + int(float(value))
    return counts


def cmd_rpm(bases, route, rpm, requests, threads):
    """REQUESTS strict chats for ROUTE, dealt in turn to each BASE, from THREADS threads at once
    (well within a minute): the replicas share the key's minute through the store, so exactly RPM
    are served, the rest are refused before any call (429 quota_exhausted), and the provider never
    answers 429. ROUTE's provider must be fresh (no use before, in any replica)."""
    bases, rpm, requests = bases.split(","), int(rpm), int(requests)
    provider = route.split("/", 1)[0]
    jobs = [bases[i % len(bases)] for i in range(requests)]
    results = []
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                base = jobs.pop(0)
            got = chat(base, route, strict=True)
            with lock:
                results.append((base, got))

    started = time.time()
    pool = [threading.Thread(target=worker) for _ in range(int(threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    took = time.time() - started
    served = {base: sum(1 for b, got in results if b == base and got["status"] == 200) for base in bases}
    problems = []
    if sum(served.values()) != rpm:
        problems.append(f"{sum(served.values())} served, the key's RPM is {rpm}")
    if any(n == 0 for n in served.values()):
        problems.append(f"a replica served none: {served}")
    for base, got in results:
        if got["status"] == 200:
            continue
        code = ""
        try:
            code = json.loads(got["body"])["error"].get("code", "")
        except (ValueError, KeyError, AttributeError):
            pass
        if got["status"] != 429 or code != "quota_exhausted":
            problems.append(f"{base}: {got['status']} {code or got['body'][:200]} (wanted 200 or 429 quota_exhausted)")
    for base, got in results:
        if f"{route}:429" in got["trail"]:
            problems.append(f"{base}: the provider answered 429 (trail {got['trail']!r})")
    attempts = {}
    for base in bases:
        for result, n in upstream_attempts(base, provider).items():
            attempts[result] = attempts.get(result, 0) + n
    if attempts.get("ok", 0) != rpm or set(attempts) - {"ok"}:
        problems.append(f"upstream attempts of {provider} in the replicas' /metrics: {attempts} (wanted {{'ok': {rpm}}})")
    if took >= 50:
        problems.append(f"the requests took {took:.0f}s: the minute may have turned")
    if problems:
        fail(f"{route} through {len(bases)} replicas:\n    " + "\n    ".join(problems))
    print(f"  {requests} requests in {took:.1f}s: {rpm} served ({', '.join(f'{b}: {n}' for b, n in served.items())}), "
          f"{requests - rpm} refused locally (429 quota_exhausted); upstream attempts {attempts}")


def byte_size(value):
    """A compose size ("512m", "1g", 536870912) in bytes."""
    text = str(value).strip().lower().rstrip("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def compose_services(config_path):
    try:
        import yaml  # PyYAML: docker-compose 1.29 depends on it; python3-yaml otherwise
    except ImportError:
        fail("PyYAML is needed to read `compose config` output (apt-get install python3-yaml)")
    with open(config_path) as f:
        return yaml.safe_load(f)["services"]


def lockdown_problems(service):
    """What the compose file leaves open in one service's configuration."""
    problems = []
    if service.get("read_only") is not True:
        problems.append(f"read_only is {service.get('read_only')!r}, not true")
    if "ALL" not in (service.get("cap_drop") or []):
        problems.append(f"cap_drop is {service.get('cap_drop')!r}, not [ALL]")
    if "no-new-privileges:true" not in (service.get("security_opt") or []):
        problems.append(f"security_opt is {service.get('security_opt')!r}, no no-new-privileges:true")
    if not service.get("mem_limit"):
        problems.append("no mem_limit")
    if not service.get("pids_limit"):
        problems.append("no pids_limit")
    tmpfs = service.get("tmpfs") or []
    if isinstance(tmpfs, str):
        tmpfs = [tmpfs]
    if not any(str(t).split(":")[0] == "/tmp" for t in tmpfs):
        problems.append(f"no tmpfs on /tmp (tmpfs {tmpfs!r}) for a read-only root")
    return problems


def cmd_lockdown_config(config_path, *names):
    services = compose_services(config_path)
    problems = []
    for name in names:
        if name not in services:
            problems.append(f"{name}: not in the configuration")
            continue
        problems += [f"{name}: {p}" for p in lockdown_problems(services[name])]
    if problems:
        fail("not locked down in the compose configuration:\n    " + "\n    ".join(problems))
    for name in names:
        s = services[name]
        print(f"  {name}: read_only, cap_drop ALL, no-new-privileges, mem_limit {s['mem_limit']}, "
              f"pids_limit {s['pids_limit']}, tmpfs {s['tmpfs']}")


def cmd_locked_down(inspect_path, config_path, name):
    """The running container of NAME is what its compose configuration says, and not root."""
    with open(inspect_path) as f:
        inspected = json.load(f)[0]
    host, config = inspected["HostConfig"], inspected["Config"]
    wanted = compose_services(config_path)[name]
    problems = []
    if host.get("ReadonlyRootfs") is not True:
        problems.append(f"ReadonlyRootfs {host.get('ReadonlyRootfs')!r}")
    if "ALL" not in (host.get("CapDrop") or []):
        problems.append(f"CapDrop {host.get('CapDrop')!r}")
    if host.get("CapAdd"):
        problems.append(f"CapAdd {host.get('CapAdd')!r}")
    if "no-new-privileges:true" not in (host.get("SecurityOpt") or []):
        problems.append(f"SecurityOpt {host.get('SecurityOpt')!r}")
    if host.get("Privileged"):
        problems.append("Privileged")
    if host.get("Memory") != byte_size(wanted["mem_limit"]):
        problems.append(f"Memory {host.get('Memory')} bytes, mem_limit {wanted['mem_limit']}")
    if host.get("PidsLimit") != int(wanted["pids_limit"]):
        problems.append(f"PidsLimit {host.get('PidsLimit')}, pids_limit {wanted['pids_limit']}")
    if "/tmp" not in (host.get("Tmpfs") or {}):
        problems.append(f"Tmpfs {host.get('Tmpfs')!r}")
    user = config.get("User") or ""
    if user.split(":")[0] in ("", "0", "root"):
        problems.append(f"User {user!r}")
    if problems:
        fail(f"{name} runs unlocked: " + "; ".join(problems))
    print(f"  {name}: ReadonlyRootfs, CapDrop {host['CapDrop']}, SecurityOpt {host['SecurityOpt']}, "
          f"Memory {host['Memory'] >> 20} MiB, PidsLimit {host['PidsLimit']}, Tmpfs {host['Tmpfs']}, User {user}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "wait":
        wait(*args)
    elif cmd == "chat":
        cmd_chat(args)
    elif cmd == "pending":
        cmd_pending(*args)
    elif cmd == "routed":
        cmd_routed(*args)
    elif cmd == "snapshot":
        json.dump(snapshot(args[0]), open(args[1], "w"))
    elif cmd == "same-state":
        cmd_same_state(*args)
    elif cmd == "db":
        cmd_db(*args)
    elif cmd == "same-db":
        cmd_same_db(*args)
    elif cmd == "same-ledger":
        cmd_same_ledger(*args)
    elif cmd == "load":
        cmd_load(*args)
    elif cmd == "rpm":
        cmd_rpm(*args)
    elif cmd == "lockdown-config":
        cmd_lockdown_config(*args)
    elif cmd == "locked-down":
        cmd_locked_down(*args)
    else:
        fail(f"unknown command {cmd}\n{__doc__}")


if __name__ == "__main__":
    main()
