#!/usr/bin/env bash
# One-node Ceph RADOS Gateway (S3 API) on loopback, for CI and developers.
#
#   infra/ceph-rgw.sh [start]   install if missing, boot (or reuse) the cluster, print env
#   infra/ceph-rgw.sh stop      stop the daemons (state is kept)
#   infra/ceph-rgw.sh status    which daemons run, whether RGW answers
#   infra/ceph-rgw.sh env       print the S3 env lines only
#   infra/ceph-rgw.sh wipe      stop and delete the state dir (next start is fresh)
#   infra/ceph-rgw.sh tls-start (re)start the optional HTTPS gateway (RGW_SSL_CERT, RGW_SSL_PORT)
#   infra/ceph-rgw.sh tls-stop  stop the HTTPS gateway only
#
# Only `export` lines go to stdout, so `eval "$(infra/ceph-rgw.sh start)"` works;
# progress and diagnostics go to stderr. See infra/README.md.
#
# No systemd/cephadm: every daemon is started directly, forks, and is tracked
# through its own pid file. Storage is BlueStore on a sparse file so a
# stop/start keeps objects.
set -euo pipefail

STATE_DIR=${CEPH_STATE_DIR:-/var/tmp/conveyor-ceph}
RGW_PORT=${RGW_PORT:-7480}
S3_BUCKET=${S3_BUCKET:-conveyor-test}
S3_REGION=${S3_REGION:-us-east-1}
S3_ACCESS_KEY=${S3_ACCESS_KEY:-conveyor-test-access}
S3_SECRET_KEY=${S3_SECRET_KEY:-conveyor-test-secret}
S3_USER=${S3_USER:-conveyor}
OSD_SIZE=${CEPH_OSD_SIZE:-20G}          # sparse: only written bytes use disk
RGW_WAIT=${CEPH_RGW_WAIT:-120}          # seconds to wait for RGW to answer
# Optional HTTPS gateway: a second RGW daemon (client.rgw.conveyor-tls) in the same zone
# serving only TLS, so turning it on, off or to a new certificate never restarts the plain one.
RGW_SSL_PORT=${RGW_SSL_PORT:-7443}
RGW_SSL_CERT=${RGW_SSL_CERT:-}          # PEM file holding the certificate (chain) and its private key
# KMS key ids and their (public, test-only) 256-bit keys for SSE-KMS: `id=base64 id=base64`.
RGW_KMS_TEST_KEYS=${RGW_KMS_TEST_KEYS:-testkey-1=YmluCmJvb3N0CmJvb3N0LWJ1aWxkCmNlcGguY29uZgo= testkey-2=aWIKTWFrZWZpbGUKbWFuCm91dApzcmMKVGVzdGluZwo=}
# Fixed so the monmap stored in the mon stays valid across restarts.
MON_V2_PORT=3300
MON_V1_PORT=6789

CONF=$STATE_DIR/ceph.conf
MARKER=$STATE_DIR/.conveyor-ceph        # proves STATE_DIR is ours before `wipe` deletes it
RGW_URL=http://127.0.0.1:$RGW_PORT
RGW_TLS_URL=https://127.0.0.1:$RGW_SSL_PORT
PACKAGES=(ceph-common ceph-mon ceph-mgr ceph-osd radosgw curl openssl)
DAEMONS=(mon mgr osd rgw)

log() { printf '[ceph-rgw] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s; }

# Every ceph CLI call is bounded: with no mon quorum the CLI would hang forever.
cephc() { timeout 20 ceph -c "$CONF" --connect-timeout 10 "$@"; }

# ---------------------------------------------------------------- env output
print_env() {
  local k v kv
  for kv in \
    "S3_ENDPOINT=$RGW_URL" \
    "S3_REGION=$S3_REGION" \
    "S3_BUCKET=$S3_BUCKET" \
    "S3_FORCE_PATH_STYLE=true" \
    "AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY" \
    "AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY" \
    "AWS_REGION=$S3_REGION"; do
    k=${kv%%=*}; v=${kv#*=}
    printf 'export %s=%q\n' "$k" "$v"
  done
  # Only when the HTTPS gateway was asked for; clients need the CA that signed RGW_SSL_CERT.
  [ -n "$RGW_SSL_CERT" ] && printf 'export %s=%q\n' S3_TLS_ENDPOINT "$RGW_TLS_URL"
  return 0
}

# ---------------------------------------------------------------- install
install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# ---------------------------------------------------------------- processes
pid_file() { echo "$STATE_DIR/run/$1.pid"; }

# Echo the pid only if the pid file points at a live ceph process
# (a bare `kill -0` would be fooled by pid reuse after a reboot / kill -9).
live_pid() {
  local f pid
  f=$(pid_file "$1")
  [ -s "$f" ] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$CONF" || return 1
  echo "$pid"
}

# Daemons of this state dir that lost their pid file (e.g. state dir half deleted):
# matched by the exact conf path on their command line, never by name.
orphan_pids() {
  local d pid
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [ "$pid" = $$ ] && continue
    tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -Eq -- "^(/usr/bin/)?(ceph-mon|ceph-mgr|ceph-osd|radosgw) .*-c $CONF( |$)" && echo "$pid"
  done
  return 0
}

rgw_answers() { curl -fsS -o /dev/null --max-time 3 "$RGW_URL/" 2>/dev/null; }

stop_all() {
  local pids=() name pid deadline
  # Reverse start order: RGW first so it doesn't spin on a vanished OSD.
  for name in rgw-tls rgw osd mgr mon; do
    pid=$(live_pid "$name") || continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  for pid in $(orphan_pids); do
    [[ " ${pids[*]} " == *" $pid "* ]] && continue
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  deadline=$(( $(now) + 20 ))
  for pid in "${pids[@]}"; do
    while [ -d "/proc/$pid" ] && [ "$(now)" -lt "$deadline" ]; do sleep 0.2; done
    if [ -d "/proc/$pid" ]; then log "pid $pid ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do while [ -d "/proc/$pid" ]; do sleep 0.1; done; done
  rm -f "$STATE_DIR"/run/*.pid "$STATE_DIR"/run/*.asok 2>/dev/null || true
  [ ${#pids[@]} -gt 0 ] && log "stopped ${#pids[@]} daemon(s)"
  return 0
}

tail_logs() {
  local f
  for f in "$STATE_DIR"/log/*.log "$STATE_DIR"/log/*.out; do
    [ -s "$f" ] || continue
    printf '\n===== %s (last 25 lines) =====\n' "$f" >&2
    tail -n 25 "$f" >&2
  done
}

# ---------------------------------------------------------------- config
write_conf() {
  local fsid=$1
  mkdir -p "$STATE_DIR"/{run,log,mon,mgr,osd,rgw}
  # Rewritten on every start (fsid kept) so RGW_PORT etc. can change between runs.
  # Keyrings are set per section, never in [global]: a global `keyring` would
  # override each daemon's own key and ceph-mgr then fails to authenticate.
  cat >"$CONF" <<EOF
# Generated by infra/ceph-rgw.sh - edits are overwritten on each start.
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
run dir = $STATE_DIR/run
admin socket = $STATE_DIR/run/\$name.asok
log file = $STATE_DIR/log/\$name.log
log to stderr = false
err to stderr = false
# A one-OSD cluster: size 1 pools, replicas chosen among OSDs not hosts.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# RGW creates ~7 pools; Pacific's default 32 PGs each would hit
# mon_max_pg_per_osd (250) on a single OSD and pool creation would fail.
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# Don't let a fullish dev disk (mon store) raise HEALTH_WARN/ERR.
mon data avail warn = 1
mon data avail crit = 0
debug ms = 0
debug mon = 1
debug osd = 1
debug bluestore = 1
debug rocksdb = 0

[mon.a]
mon data = $STATE_DIR/mon
keyring = $STATE_DIR/mon/keyring
pid file = $STATE_DIR/run/mon.pid

[mgr.x]
mgr data = $STATE_DIR/mgr
keyring = $STATE_DIR/mgr/keyring
pid file = $STATE_DIR/run/mgr.pid
# Only the always-on modules: the default extras (restful, iostat, nfs) are
# unused here and restful wants python deps we don't install.
mgr initial modules =

[osd.0]
osd data = $STATE_DIR/osd
keyring = $STATE_DIR/osd/keyring
pid file = $STATE_DIR/run/osd.pid
osd objectstore = bluestore
bluestore block create = true
bluestore block size = $OSD_SIZE
bluestore block db create = false
bluestore block wal create = false
# Keep memory small on a 2-core CI box: cache autotunes down to this target.
osd memory target = 1073741824
bluestore cache autotune = true
osd op num shards = 2
osd op num threads per shard = 1

[client.admin]
keyring = $STATE_DIR/admin.keyring

[client.rgw.conveyor]
keyring = $STATE_DIR/rgw/keyring
pid file = $STATE_DIR/run/rgw.pid
rgw data = $STATE_DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw thread pool size = 64
rgw enable usage log = false
rgw enable ops log = false
debug rgw = 1

# Server-side encryption for tests (SSE-KMS with fixed keys; README "Encryption at rest").
# Every RGW of this cluster (the HTTPS one too) reads [client]. The "testing" KMS backend takes
# its keys from this line: NEVER for production (the keys are public, in this file).
[client]
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = $RGW_KMS_TEST_KEYS
# The plain gateway is http on loopback; RGW refuses SSE over http unless told otherwise.
rgw crypt require ssl = false
EOF
}

# ---------------------------------------------------------------- bootstrap
wipe_state() {
  if [ -z "$STATE_DIR" ] || [ "$STATE_DIR" = / ]; then die "refusing to wipe STATE_DIR='$STATE_DIR'"; fi
  stop_all
  if [ -d "$STATE_DIR" ]; then
    if [ -e "$MARKER" ] || [ -z "$(ls -A "$STATE_DIR")" ]; then
      rm -rf "$STATE_DIR"
    else
      die "$STATE_DIR exists but was not created by this script; remove it yourself or set CEPH_STATE_DIR"
    fi
  fi
}

bootstrap() {
  local fsid osd_uuid
  log "bootstrapping a fresh cluster in $STATE_DIR"
  wipe_state
  mkdir -p "$STATE_DIR"
  touch "$MARKER"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"

  # Every key exists before mon mkfs, so the mon's auth database is seeded
  # with all daemons and no `ceph auth add` round-trips are needed later.
  local S=$STATE_DIR
  {
  ceph-authtool --create-keyring "$S/mon.keyring.tmp" --gen-key -n mon. --cap mon 'allow *'
  ceph-authtool --create-keyring "$S/admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *'
  ceph-authtool --create-keyring "$S/mgr/keyring" --gen-key -n mgr.x \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
  ceph-authtool --create-keyring "$S/osd/keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *'
  ceph-authtool --create-keyring "$S/rgw/keyring" --gen-key -n client.rgw.conveyor \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
  for k in admin.keyring mgr/keyring osd/keyring rgw/keyring; do
    ceph-authtool "$S/mon.keyring.tmp" --import-keyring "$S/$k"
  done
  } >/dev/null  # ceph-authtool chats on stdout, which is reserved for env lines
  chmod 600 "$S"/*.keyring* "$S"/*/keyring

  monmaptool --create --fsid "$fsid" \
    --addv a "[v2:127.0.0.1:$MON_V2_PORT,v1:127.0.0.1:$MON_V1_PORT]" "$S/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$S/monmap" --keyring "$S/mon.keyring.tmp" \
    >"$S/log/mkfs.out" 2>&1 || { tail_logs; die "ceph-mon --mkfs failed"; }
  # ceph-mon --mkfs copies the keyring into mon data; drop the one with every secret in it.
  rm -f "$S/mon.keyring.tmp" "$S/monmap"

  start_mon || { tail_logs; die "fresh ceph-mon did not start"; }
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  echo "$osd_uuid" >"$S/osd/uuid"
  # Registers id 0; the key was already imported above.
  [ "$(cephc osd new "$osd_uuid" 0)" = 0 ] || die "ceph osd new did not return id 0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" \
    >"$S/log/mkfs-osd.out" 2>&1 || { tail_logs; die "ceph-osd --mkfs failed"; }
  echo "$fsid" >"$S/fsid"
}

# ---------------------------------------------------------------- start
wait_for() {  # wait_for SECONDS DESCRIPTION CMD... (polls CMD until success)
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(( $(now) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(now)" -lt "$deadline" ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.5
  done
}

spawn() {  # spawn NAME CMD...   daemons fork on their own; keep their stdio in a log
  local name=$1; shift
  live_pid "$name" >/dev/null && return 0
  rm -f "$(pid_file "$name")"
  # 9>&- : the daemon must not inherit the start lock, or it would hold it forever.
  # Startup errors (bad store, port in use) make the parent exit non-zero before forking.
  "$@" -c "$CONF" >>"$STATE_DIR/log/$name.out" 2>&1 </dev/null 9>&- || {
    log "$name failed to start (exit $?)"
    return 1
  }
  wait_for 15 "$name pid file" live_pid "$name"
}

start_mon() {
  spawn mon ceph-mon -i a || return 1
  wait_for 30 "mon quorum" cephc mon stat
}

# An RGW that died without unwatching (kill -9, OOM) leaves watches on its
# control objects; until they time out every bucket/user/CORS change stalls
# ~20 s waiting for the dead watcher. No RGW runs at this point, so every
# watcher is stale: blocklisting its address drops the watches at once.
evict_stale_watches() {
  local i addr addrs=()
  timeout 30 rados -c "$CONF" lspools 2>/dev/null | grep -qx default.rgw.control || return 0
  for i in 0 1 2 3 4 5 6 7; do
    while read -r addr; do
      [[ " ${addrs[*]} " == *" $addr "* ]] || addrs+=("$addr")
    done < <(timeout 20 rados -c "$CONF" -p default.rgw.control listwatchers "notify.$i" 2>/dev/null |
      sed -n 's/^watcher=\([^ ]*\) .*/\1/p')
  done
  for addr in "${addrs[@]}"; do
    log "evicting stale RGW watcher $addr"
    cephc osd blocklist add "$addr" 600 >/dev/null 2>&1 || true
  done
}

osd_up() { cephc osd dump 2>/dev/null | grep -Eq '^osd\.0 up +in'; }

start_daemons() {
  start_mon || return 1
  spawn mgr ceph-mgr -i x || return 1
  spawn osd ceph-osd -i 0 || return 1
  wait_for 60 "osd.0 up" osd_up || return 1
  evict_stale_watches
  spawn rgw radosgw -n client.rgw.conveyor || return 1
  # First boot creates RGW's pools, which dominates this wait.
  wait_for "$RGW_WAIT" "RGW on $RGW_URL" rgw_answers
}

all_running() {
  local d
  for d in "${DAEMONS[@]}"; do live_pid "$d" >/dev/null || return 1; done
  rgw_answers
}

# ---------------------------------------------------------------- S3 setup
# Signed S3 calls through curl's built-in SigV4 (curl >= 7.75): no SDK/awscli
# needed before `npm ci`. curl 7.88 does not send x-amz-content-sha256, which
# RGW (like AWS) requires for SigV4, so we hash the body and add it; curl then
# signs it along with host and x-amz-date.
s3curl() {  # s3curl METHOD PATH BODY [curl args...]
  local method=$1 path=$2 body=$3 sha; shift 3
  sha=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
  local data=()
  [ -n "$body" ] && data=(--data-binary "$body")
  # Generous: a metadata write waiting on a dead watcher takes ~20 s (see evict_stale_watches).
  curl -sS --max-time 60 -X "$method" \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: $sha" "${data[@]}" "$@" "$RGW_URL$path"
}

ensure_user() {
  local info
  if info=$(timeout 30 radosgw-admin -c "$CONF" user info --uid="$S3_USER" 2>/dev/null); then
    if ! grep -q "\"access_key\": \"$S3_ACCESS_KEY\"" <<<"$info"; then
      log "adding access key $S3_ACCESS_KEY to existing user $S3_USER"
      timeout 30 radosgw-admin -c "$CONF" key create --uid="$S3_USER" --key-type=s3 \
        --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null
    fi
  else
    log "creating S3 user $S3_USER"
    timeout 30 radosgw-admin -c "$CONF" user create --uid="$S3_USER" --display-name="Conveyor tests" \
      --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null
  fi
}

ensure_bucket() {
  local code body md5 current el
  code=$(s3curl HEAD "/$S3_BUCKET" "" -I -o /dev/null -w '%{http_code}') || true
  if [ "$code" = 404 ]; then
    log "creating bucket $S3_BUCKET"
    code=$(s3curl PUT "/$S3_BUCKET" "" -o /dev/null -w '%{http_code}') || true
  fi
  case $code in 200|409) ;; *) die "bucket $S3_BUCKET: HTTP $code" ;; esac

  # Browsers (client-sdk) PUT parts straight to S3 and must read ETag back.
  body='<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedMethod>DELETE</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><ExposeHeader>Content-Range</ExposeHeader><ExposeHeader>Accept-Ranges</ExposeHeader><ExposeHeader>Content-Length</ExposeHeader><MaxAgeSeconds>3600</MaxAgeSeconds></CORSRule></CORSConfiguration>'

  # Only write CORS when it differs: metadata writes are the slow, fragile
  # kind (see evict_stale_watches), and a plain restart needs none.
  # `?cors=` not `?cors`: curl 7.88 signs a bare query key wrongly.
  current=$(s3curl GET "/$S3_BUCKET?cors=" "") || true
  while read -r el; do
    grep -qF -- "$el" <<<"$current" || { current=; break; }
  done < <(grep -o '<[A-Za-z]*>[^<]*</' <<<"$body")
  [ -n "$current" ] && return 0

  md5=$(printf '%s' "$body" | openssl dgst -md5 -binary | base64)
  code=$(s3curl PUT "/$S3_BUCKET?cors=" "$body" -o "$STATE_DIR/log/cors.out" -w '%{http_code}' \
    -H "Content-MD5: $md5" -H 'Content-Type: application/xml') || true
  [ "$code" = 200 ] || { cat "$STATE_DIR/log/cors.out" >&2; die "PutBucketCors: HTTP $code"; }
}

# Right after a (re)start the first write to each RGW pool takes ~2 s while
# PGs finish activating; pay that here so test timings aren't skewed. Touches
# the data, index and multipart (non-ec) pools.
warm_up() {
  local key="/$S3_BUCKET/.ceph-rgw-warmup" upload
  s3curl PUT "$key" "warm" -o /dev/null || true
  s3curl DELETE "$key" "" -o /dev/null || true
  upload=$(s3curl POST "$key?uploads=" "" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p') || true
  [ -n "$upload" ] && { s3curl DELETE "$key?uploadId=$upload" "" -o /dev/null || true; }
  return 0
}

# ---------------------------------------------------------------- HTTPS gateway
# beast's `ssl_endpoint` with `ssl_certificate` = one PEM holding the certificate and key
# (`ssl_private_key` defaults to the same file). Its own cephx key, pid file, admin socket
# (`$name.asok`) and log (`$name.log`); settings on the command line override ceph.conf.
RGW_TLS_NAME=client.rgw.conveyor-tls

rgw_tls_answers() { curl -sS -k -o /dev/null --max-time 3 "$RGW_TLS_URL/" 2>/dev/null; }

rgw_tls_keyring() {
  local kr=$STATE_DIR/rgw-tls/keyring
  mkdir -p "$STATE_DIR/rgw-tls"
  if [ ! -s "$kr" ]; then
    cephc auth get-or-create "$RGW_TLS_NAME" mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o "$kr" >/dev/null 2>&1 ||
      die "could not create the cephx key of $RGW_TLS_NAME"
    chmod 600 "$kr"
  fi
  echo "$kr"
}

stop_rgw_tls() {
  local pid
  pid=$(live_pid rgw-tls) || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(now) + 20 ))
  while [ -d "/proc/$pid" ] && [ "$(now)" -lt "$deadline" ]; do sleep 0.2; done
  [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null
  while [ -d "/proc/$pid" ]; do sleep 0.1; done
  rm -f "$(pid_file rgw-tls)"
  log "stopped the HTTPS gateway"
}

# (Re)starts the HTTPS gateway: a running one is reused only with the same port and certificate
# bytes (the test suite makes a new certificate each run).
ensure_rgw_tls() {
  [ -n "$RGW_SSL_CERT" ] || die "RGW_SSL_CERT must name a PEM file with the certificate and its key"
  [ -r "$RGW_SSL_CERT" ] || die "RGW_SSL_CERT=$RGW_SSL_CERT is not readable"
  local sum stamp=$STATE_DIR/rgw-tls/serving pid kr
  sum="$RGW_SSL_PORT $(sha256sum <"$RGW_SSL_CERT" | cut -d' ' -f1)"
  if pid=$(live_pid rgw-tls) && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && rgw_tls_answers; then
    log "HTTPS gateway already serving this certificate on $RGW_TLS_URL"
    return 0
  fi
  stop_rgw_tls
  kr=$(rgw_tls_keyring)
  # A copy RGW owns: the caller's file may be a temp file deleted before the daemon stops.
  cp "$RGW_SSL_CERT" "$STATE_DIR/rgw-tls/cert.pem"
  chmod 600 "$STATE_DIR/rgw-tls/cert.pem"
  spawn rgw-tls radosgw -n "$RGW_TLS_NAME" --keyring="$kr" --pid-file="$(pid_file rgw-tls)" \
    --rgw-data="$STATE_DIR/rgw-tls" \
    --rgw-frontends="beast ssl_endpoint=127.0.0.1:$RGW_SSL_PORT ssl_certificate=$STATE_DIR/rgw-tls/cert.pem" \
    --rgw-thread-pool-size=32 --rgw-enable-usage-log=false --rgw-enable-ops-log=false --debug-rgw=1 ||
    { tail_logs; die "HTTPS gateway failed to start"; }
  wait_for 30 "RGW on $RGW_TLS_URL" rgw_tls_answers || { tail_logs; die "HTTPS gateway does not answer"; }
  echo "$sum" >"$stamp"
  log "HTTPS gateway ready on $RGW_TLS_URL"
}

cmd_tls_start() {
  exec 9>"$STATE_DIR.lock"
  flock -w 600 9 || die "another ceph-rgw.sh holds $STATE_DIR.lock"
  all_running || die "the cluster is not running: run \`$0 start\` first"
  ensure_rgw_tls
  print_env
}

cmd_start() {
  local t0 fresh=0
  t0=$(now)
  install_packages
  mkdir -p "$(dirname "$STATE_DIR")"
  # Serialise concurrent starts (parallel CI jobs / two terminals).
  exec 9>"$STATE_DIR.lock"
  flock -w 600 9 || die "another ceph-rgw.sh holds $STATE_DIR.lock"

  if [ -s "$STATE_DIR/fsid" ] && all_running; then
    log "cluster already running, reusing it"
  else
    if [ -s "$STATE_DIR/fsid" ] && [ -s "$STATE_DIR/osd/uuid" ] && [ -d "$STATE_DIR/mon/store.db" ]; then
      log "starting from existing state in $STATE_DIR"
      # Half-dead leftovers (kill -9, OOM, reboot) are restarted from scratch.
      stop_all
      write_conf "$(cat "$STATE_DIR/fsid")"
      if ! start_daemons; then
        tail_logs
        log "existing state did not come up; wiping and re-bootstrapping"
        fresh=1
      fi
    else
      fresh=1
    fi
    if [ $fresh = 1 ]; then
      bootstrap
      start_daemons || { tail_logs; stop_all; die "cluster failed to start (logs above, in $STATE_DIR/log)"; }
    fi
  fi
  ensure_user
  ensure_bucket
  warm_up
  [ -n "$RGW_SSL_CERT" ] && ensure_rgw_tls
  log "RGW ready on $RGW_URL in $(( $(now) - t0 ))s ($([ $fresh = 1 ] && echo fresh || echo reused) state)"
  print_env
}

cmd_status() {
  local d pid rc=0
  for d in "${DAEMONS[@]}"; do
    if pid=$(live_pid "$d"); then echo "$d: running (pid $pid)"; else echo "$d: not running"; rc=1; fi
  done
  if rgw_answers; then echo "rgw http: answering on $RGW_URL"; else echo "rgw http: NOT answering on $RGW_URL"; rc=1; fi
  # Optional: reported, never a failure when it was not started.
  if pid=$(live_pid rgw-tls); then
    if rgw_tls_answers; then echo "rgw-tls: running (pid $pid), answering on $RGW_TLS_URL"; else echo "rgw-tls: running (pid $pid), NOT answering on $RGW_TLS_URL"; rc=1; fi
  fi
  if live_pid mon >/dev/null; then
    echo "health: $(cephc health 2>/dev/null || echo unknown)"
  fi
  return $rc
}

case ${1:-start} in
  start) cmd_start ;;
  stop) stop_all; log "stopped (state kept in $STATE_DIR)" ;;
  status) cmd_status ;;
  env) print_env ;;
  wipe) wipe_state; log "wiped $STATE_DIR" ;;
  tls-start) cmd_tls_start ;;
  tls-stop) stop_rgw_tls ;;
  *) echo "usage: $0 [start|stop|status|env|wipe|tls-start|tls-stop]" >&2; exit 2 ;;
esac
