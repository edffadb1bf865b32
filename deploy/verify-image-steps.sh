#!/usr/bin/env bash
# Runs the Dockerfile's steps by hand, for machines without a container engine (the development machines and CI
# have none). Not part of `npm test`: documentation that stays runnable. From the repository root:
#
#   bash deploy/verify-image-steps.sh
#
# Stage `deps`:    package.json + package-lock.json → `npm ci --omit=dev --ignore-scripts` (any npm ≥ 10)
# Stage runtime:   node_modules from deps + package.json, bin/, src/, config/, policy-bundles/ (nothing else)
# Config:          deploy/ringfence.yaml with `store` and `counters` removed (their single-replica defaults:
#                  memory) + the production bundle, in a stand-in for /etc/ringfence
# Run:             `node bin/ringfence.js serve --config …/ringfence.yaml` under Node 24 (the pinned one), with an
#                  empty environment plus the image's ENV, as a non-root uid (1000, the image's USER) when root
# Checks:          the Dockerfile's own HEALTHCHECK command, /healthz, /readyz, a chat completion through the mock
#                  provider, /metrics and the admin API on the admin port, then SIGTERM → exit 0.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
node24="${NODE24:-$repo/node_modules/node/bin/node}"
[ -x "$node24" ] || { echo "no Node 24 at $node24 (run npm ci, or set NODE24)" >&2; exit 1; }
"$node24" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)' ||
  { echo "$node24 is not Node 24" >&2; exit 1; }

work="$(mktemp -d /tmp/rf-image.XXXXXX)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
step() { printf '\n== %s\n' "$*"; }

step "stage deps: npm ci --omit=dev --ignore-scripts (npm $(npm --version), node $(node --version))"
mkdir -p "$work/deps"
cp "$repo/package.json" "$repo/package-lock.json" "$work/deps/"
(cd "$work/deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund)

step "stage runtime: copy node_modules, package.json, bin/, src/, config/, policy-bundles/"
app="$work/app"
mkdir -p "$app"
cp -R "$work/deps/node_modules" "$app/node_modules"
cp "$repo/package.json" "$app/"
cp -R "$repo/bin" "$repo/src" "$repo/config" "$repo/policy-bundles" "$app/"
du -sh "$app/node_modules" | sed 's/^/node_modules: /'
# No devDependency may be in the image (least of all `node`, the pinned Node the bin would re-execute under).
"$node24" -e '
  const { existsSync } = require("node:fs");
  const dev = Object.keys(require(process.argv[1] + "/package.json").devDependencies ?? {});
  const present = dev.filter((d) => existsSync(process.argv[1] + "/node_modules/" + d));
  if (present.length) { console.error("devDependencies in the image: " + present.join(", ")); process.exit(1); }
  console.log("no devDependency installed (" + dev.length + " checked)");
' "$app"

step "config: deploy/ringfence.yaml, store/counters at their single-replica defaults, + the production bundle"
etc="$work/etc/ringfence"
mkdir -p "$etc"
cp "$repo/policy-bundles/production/bundle.yaml" "$etc/bundle.yaml"
"$node24" --input-type=module -e '
  import { readFileSync, writeFileSync } from "node:fs";
  import { createRequire } from "node:module";
  const { parseDocument } = createRequire(process.argv[1] + "/").call(null, "yaml");
  const doc = parseDocument(readFileSync(process.argv[2], "utf8"));
  doc.delete("store");
  doc.delete("counters");
  writeFileSync(process.argv[3], String(doc));
' "$app/node_modules" "$repo/deploy/ringfence.yaml" "$etc/ringfence.yaml"
chmod -R a-w "$app" "$etc"

free_port() {
  "$node24" -e 'const s=require("node:net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port="$(free_port)"
admin_port="$(free_port)"
while [ "$admin_port" = "$port" ]; do admin_port="$(free_port)"; done

# The image's environment (Dockerfile ENV), the ports moved off 8080/8081 (this machine is shared), and the
# credentials deploy/ringfence.yaml reads. Nothing else from this shell leaks in (env -i).
app_key="verify-app-key-$$"
admin_token="verify-admin-token-$$"
envs=(
  PATH=/usr/bin:/bin HOME="$work" NODE_ENV=production
  RINGFENCE_HOST=0.0.0.0 RINGFENCE_ADMIN_HOST=0.0.0.0 PORT="$port" ADMIN_PORT="$admin_port"
  RINGFENCE_APP_KEY="$app_key" RINGFENCE_ADMIN_TOKEN="$admin_token" RINGFENCE_APPROVER_TOKEN="verify-approver-$$"
  RINGFENCE_REPLICA_ID=verify-1
)
as_user=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
  as_user=(setpriv --reuid=1000 --regid=1000 --clear-groups)
fi

step "run: ${as_user[*]:-(as $(id -un))} node bin/ringfence.js serve --config $etc/ringfence.yaml (node $("$node24" --version))"
log="$work/gateway.log"
(cd "$app" && exec env -i "${envs[@]}" "${as_user[@]}" "$node24" bin/ringfence.js serve --config "$etc/ringfence.yaml") \
  >"$log" 2>&1 &
pid=$!

# The checks, in Node (no curl in the slim image, and none needed here).
export RF_PORT="$port" RF_ADMIN_PORT="$admin_port" RF_APP_KEY="$app_key" RF_ADMIN_TOKEN="$admin_token"
export RF_DOCKERFILE="$repo/Dockerfile" RF_NODE="$node24" RF_APP="$app" RF_PID="$pid"
status=0
"$node24" --input-type=module -e '
  import { spawnSync } from "node:child_process";
  import { readFileSync } from "node:fs";
  const e = process.env;
  const data = `http://127.0.0.1:${e.RF_PORT}`;
  const admin = `http://127.0.0.1:${e.RF_ADMIN_PORT}`;
  const fail = (msg) => { console.error(`FAIL ${msg}`); process.exit(1); };
  const ok = (msg) => console.log(`ok   ${msg}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try { process.kill(Number(e.RF_PID), 0); } catch { fail("the gateway exited during start"); }
    try { const r = await fetch(`${data}/readyz`); if (r.ok) break; } catch {}
    if (Date.now() > deadline) fail("not ready after 30 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  // The HEALTHCHECK of the Dockerfile, exactly as written there (its exec form), with this Node as `node`.
  const text = readFileSync(e.RF_DOCKERFILE, "utf8").replace(/\\\n/g, " ");
  const line = text.split("\n").find((l) => /^\s*HEALTHCHECK\s/i.test(l));
  const cmd = JSON.parse(line.slice(line.search(/\bCMD\s+\[/) + 3).trim());
  const hc = spawnSync(cmd[0] === "node" ? e.RF_NODE : cmd[0], cmd.slice(1), { cwd: e.RF_APP, env: { PORT: e.RF_PORT } });
  if (hc.status !== 0) fail(`HEALTHCHECK ${JSON.stringify(cmd)} exited ${hc.status}`);
  ok(`HEALTHCHECK exec ${JSON.stringify(cmd.slice(0, 2))} … exited 0`);
  const get = async (url, init) => { const r = await fetch(url, init); return { status: r.status, body: await r.text() }; };
  let r = await get(`${data}/healthz`);
  if (r.status !== 200) fail(`/healthz ${r.status}`);
  ok(`GET /healthz ${r.status} ${r.body}`);
  r = await get(`${data}/readyz`);
  if (r.status !== 200) fail(`/readyz ${r.status}`);
  ok(`GET /readyz ${r.status} ${r.body}`);
  r = await get(`${data}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${e.RF_APP_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "mock-gpt", messages: [{ role: "user", content: "hello from the image steps" }] }),
  });
  const chat = JSON.parse(r.body);
  if (r.status !== 200 || chat.object !== "chat.completion") fail(`chat completion ${r.status} ${r.body}`);
  ok(`POST /v1/chat/completions ${r.status} model=${chat.model} content=${JSON.stringify(chat.choices[0].message.content)}`);
  r = await get(`${data}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer wrong" }, body: "{}" });
  if (r.status !== 401) fail(`a wrong key got ${r.status}`);
  ok(`POST /v1/chat/completions with a wrong key ${r.status}`);
  r = await get(`${admin}/metrics`);
  if (r.status !== 200 || !r.body.includes("ringfence_requests_total")) fail(`/metrics ${r.status}`);
  ok(`GET admin /metrics ${r.status} (${r.body.split("\n").length} lines, ringfence_requests_total present)`);
  r = await get(`${admin}/admin/v1/rollout`, { headers: { authorization: `Bearer ${e.RF_ADMIN_TOKEN}` } });
  if (r.status !== 200) fail(`admin /admin/v1/rollout ${r.status} ${r.body}`);
  ok(`GET admin /admin/v1/rollout ${r.status} (token from RINGFENCE_ADMIN_TOKEN)`);
' || status=$?

if [ "$status" -eq 0 ]; then
  step "SIGTERM: graceful shutdown"
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  pid=""
  if [ "$rc" -ne 0 ]; then echo "FAIL exit $rc after SIGTERM"; status=1; else echo "ok   exit 0 after SIGTERM"; fi
fi
step "gateway log (first lines)"
head -n 5 "$log" | cut -c1-300
if [ "$status" -ne 0 ]; then
  echo "--- full log"; cat "$log"
  exit 1
fi
step "the image steps work"
