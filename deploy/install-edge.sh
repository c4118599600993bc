#!/usr/bin/env bash
# Install the Retail CV edge agent on a store box (x86 or Jetson) and enroll it with the hub.
#
#   sudo deploy/install-edge.sh --hub https://hub.example.com --token rce_... --store paris-01 \
#        --camera entrance=rtsp://user:pass@10.0.0.21/stream1 --model /media/usb/yolox_nano.onnx
#
# Steps: a service user; a virtual environment with the agent (pip install <this repo>[edge]);
# the model copied into the data folder; store.yaml written from the flags (an existing one is
# kept: re-running upgrades the agent without losing cameras' lines and zones); the config
# checked; the box enrolled with the one-time token; the systemd unit installed and started
# (or, with --no-systemd, its command printed); `retail-edge doctor` run last.
#
# Without --prefix: agent in /opt/retail-cv/venv, config in /etc/retail-cv, data (outbox,
# credentials, models) in /var/lib/retail-cv. With --prefix DIR: DIR/venv, DIR/etc, DIR/var, and
# no service user is created (for trying it out, or tests). Run with --help for every flag.
set -euo pipefail

usage() {
  sed -n '/^# usage-start/,/^# usage-end/p' "$0" | sed '1d;$d;s/^# \{0,1\}//'
}
# usage-start
# Usage: install-edge.sh --hub URL --store ID --camera [ID=]URL --model PATH [options]
#
#   --hub URL              hub base URL, e.g. https://hub.example.com (enrollment, HTTP sync)
#   --token TOKEN          one-time enrollment token from HQ (`retail-hub admin enroll-token`);
#                          may be left out when the box is already enrolled; or set
#                          RETAIL_EDGE_ENROLL_TOKEN instead (kept out of the process list)
#   --store ID             the store this box belongs to (must match the token's store)
#   --device ID            this box's device id (default: the short host name)
#   --camera [ID=]URL      a camera: rtsp://..., a video file, or a USB index; repeat per camera
#                          (ids default to cam1, cam2, ...)
#   --fps N                frames per second analysed per camera (default 3)
#   --model PATH           person detector (.onnx, or OpenVINO .xml with its .bin); copied
#   --timezone ZONE        IANA time zone of the store (default: this box's, else UTC)
#   --transport http|mqtt  how records reach the hub (default http)
#   --broker HOST[:PORT]   MQTT broker (transport mqtt; port default 8883, TLS)
#   --broker-ca FILE       CA that signed the broker's certificate (default: the system's)
#   --prefix DIR           install everything under DIR (no service user)
#   --config-dir DIR       where store.yaml goes (default /etc/retail-cv or PREFIX/etc)
#   --data-dir DIR         outbox, credentials and models (default /var/lib/retail-cv or
#                          PREFIX/var)
#   --user NAME            service user (default retail-edge)
#   --source PATH          what to install: a source tree or a wheel (default: this repository)
#   --extras LIST          pip extras (default edge; add openvino for Intel boxes)
#   --python PY            Python 3.11+ for the virtual environment (default python3)
#   --system-site-packages let the venv see system packages (Jetson: JetPack's OpenCV and
#                          onnxruntime-gpu)
#   --base-venv DIR        reuse the packages of an existing virtual environment instead of
#                          downloading them (offline images; the tests use the project's .venv)
#   --force-config         overwrite an existing store.yaml
#   --no-systemd           do not install the unit; print the command that runs the agent
#   --no-doctor            skip the final `retail-edge doctor`
# usage-end

die() { echo "install-edge: error: $*" >&2; exit 2; }
say() { echo "install-edge: $*" >&2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
hub="" token="${RETAIL_EDGE_ENROLL_TOKEN:-}" store="" device="" fps="3" model="" timezone="" transport="http"
broker="" broker_ca="" prefix="" config_dir="" data_dir="" user="retail-edge"
source_path="$(dirname "$here")" extras="edge" python="python3" system_site=0 base_venv=""
force_config=0 systemd=1 doctor=1
cameras=()

while [ $# -gt 0 ]; do
  case "$1" in
    --hub) hub="${2:?--hub needs a URL}"; shift 2 ;;
    --token) token="${2:?--token needs a value}"; shift 2 ;;
    --store) store="${2:?--store needs an id}"; shift 2 ;;
    --device) device="${2:?--device needs an id}"; shift 2 ;;
    --camera) cameras+=("${2:?--camera needs a URL}"); shift 2 ;;
    --fps) fps="${2:?--fps needs a number}"; shift 2 ;;
    --model) model="${2:?--model needs a path}"; shift 2 ;;
    --timezone) timezone="${2:?--timezone needs a zone}"; shift 2 ;;
    --transport) transport="${2:?--transport needs http or mqtt}"; shift 2 ;;
    --broker) broker="${2:?--broker needs HOST[:PORT]}"; shift 2 ;;
    --broker-ca) broker_ca="${2:?--broker-ca needs a file}"; shift 2 ;;
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --config-dir) config_dir="${2:?--config-dir needs a folder}"; shift 2 ;;
    --data-dir) data_dir="${2:?--data-dir needs a folder}"; shift 2 ;;
    --user) user="${2:?--user needs a name}"; shift 2 ;;
    --source) source_path="${2:?--source needs a path}"; shift 2 ;;
    --extras) extras="${2:?--extras needs a list}"; shift 2 ;;
    --python) python="${2:?--python needs an interpreter}"; shift 2 ;;
    --system-site-packages) system_site=1; shift ;;
    --base-venv) base_venv="${2:?--base-venv needs a folder}"; shift 2 ;;
    --force-config) force_config=1; shift ;;
    --no-systemd) systemd=0; shift ;;
    --no-doctor) doctor=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ -n "$hub" ] || die "--hub URL is required (the hub's base URL)"
[ -n "$store" ] || die "--store ID is required"
device="${device:-$(hostname -s)}"
case "$transport" in
  http) ;;
  mqtt) [ -n "$broker" ] || die "--transport mqtt needs --broker HOST[:PORT]" ;;
  *) die "--transport must be http or mqtt, not $transport" ;;
esac
if [ -n "$prefix" ]; then
  mkdir -p "$prefix"
  prefix="$(cd "$prefix" && pwd)"
  config_dir="${config_dir:-$prefix/etc}"
  data_dir="${data_dir:-$prefix/var}"
else
  prefix="/opt/retail-cv"
  config_dir="${config_dir:-/etc/retail-cv}"
  data_dir="${data_dir:-/var/lib/retail-cv}"
fi
venv="$prefix/venv"
config="$config_dir/store.yaml"
credentials="$data_dir/credentials.json"
if [ -z "$timezone" ]; then
  timezone="$(timedatectl show -p Timezone --value 2>/dev/null || cat /etc/timezone 2>/dev/null || true)"
  timezone="${timezone:-UTC}"
fi
if [ ! -f "$config" ] || [ "$force_config" = 1 ]; then
  [ ${#cameras[@]} -gt 0 ] || die "at least one --camera is needed to write $config"
  [ -n "$model" ] || die "--model PATH is needed to write $config"
  [ -f "$model" ] || die "model file not found: $model"
fi
if [ "$(id -u)" != 0 ] || [ "$prefix" != "/opt/retail-cv" ]; then
  make_user=0  # not root, or a trial install under --prefix: runs as whoever starts it
else
  make_user=1
fi
if [ "$systemd" = 1 ] && { [ "$(id -u)" != 0 ] || ! command -v systemctl >/dev/null; }; then
  say "not root or no systemctl here: installing without systemd (as --no-systemd)"
  systemd=0
fi

# 1. The service user.
if [ "$make_user" = 1 ] && ! id "$user" >/dev/null 2>&1; then
  say "creating system user $user"
  useradd --system --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$user"
fi
if [ "$make_user" = 1 ] && getent group video >/dev/null; then
  usermod -a -G video "$user"  # USB cameras (/dev/video*) and the Jetson GPU
fi
mkdir -p "$config_dir" "$data_dir/models"

# 2. The agent in its own virtual environment.
if [ ! -x "$venv/bin/python" ]; then
  say "creating the virtual environment $venv"
  venv_flags=()
  [ "$system_site" = 1 ] && venv_flags+=(--system-site-packages)
  "$python" -m venv "${venv_flags[@]}" "$venv"
fi
if [ -n "$base_venv" ]; then
  # Make the base environment's packages importable (after the venv's own), so pip finds the
  # dependencies already installed and downloads nothing.
  base_site="$("$base_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  own_site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$base_site" > "$own_site/retail-cv-base-venv.pth"
fi
say "installing the agent from $source_path [$extras]"
# A source tree or a wheel file: both take extras the same way.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$source_path[$extras]"
edge="$venv/bin/retail-edge"

# 3. The model and the config.
if [ ! -f "$config" ] || [ "$force_config" = 1 ]; then
  model_dir="$data_dir/models"
  cp -f "$model" "$model_dir/"
  model_base="${model%.*}"
  for extra in "$model.manifest.json" "$model_base.manifest.json" "$model_base.bin"; do
    if [ -f "$extra" ]; then cp -f "$extra" "$model_dir/"; fi
  done
  if [ -n "$broker_ca" ]; then
    cp -f "$broker_ca" "$config_dir/broker-ca.pem"
    broker_ca="$config_dir/broker-ca.pem"
  fi
  say "writing $config"
  STORE="$store" DEVICE="$device" TZ_NAME="$timezone" FPS="$fps" HUB="$hub" \
  MODEL="$model_dir/$(basename "$model")" DATA="$data_dir" TRANSPORT="$transport" \
  BROKER="$broker" BROKER_CA="$broker_ca" CONFIG="$config" \
  "$venv/bin/python" - "${cameras[@]}" <<'PY'
import os, re, sys
import yaml

env = os.environ
cameras = []
for i, arg in enumerate(sys.argv[1:], start=1):
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})=(.+)$", arg)
    cam_id, source = (m.group(1), m.group(2)) if m else (f"cam{i}", arg)
    cameras.append({"id": cam_id, "source": source, "fps": float(env["FPS"])})
sync = {
    "transport": env["TRANSPORT"],
    "hub_url": env["HUB"],
    "credentials_file": os.path.join(env["DATA"], "credentials.json"),
}
if env["TRANSPORT"] == "mqtt":
    host, _, port = env["BROKER"].partition(":")
    sync.update(mqtt_host=host, mqtt_port=int(port or 8883), mqtt_tls=True)
    if env["BROKER_CA"]:
        sync["mqtt_ca_file"] = env["BROKER_CA"]
config = {
    "store_id": env["STORE"],
    "device_id": env["DEVICE"],
    "timezone": env["TZ_NAME"],
    "model": {"path": env["MODEL"]},
    "cameras": cameras,
    "outbox": {"path": os.path.join(env["DATA"], "outbox.sqlite3")},
    "sync": sync,
}
header = (
    "# Written by deploy/install-edge.sh. Draw lines and zones per camera here (see the\n"
    "# README), then: retail-edge check-config THIS_FILE && systemctl restart retail-edge\n"
)
tmp = env["CONFIG"] + ".tmp"
with open(tmp, "w") as f:
    f.write(header + yaml.safe_dump(config, sort_keys=False))
os.replace(tmp, env["CONFIG"])
PY
else
  say "keeping the existing $config (--force-config rewrites it)"
fi
"$edge" check-config "$config"

# 4. Enrollment: the one-time token becomes this box's own credentials.
if [ -n "$token" ]; then
  say "enrolling device $device of store $store with $hub"
  # The token goes to the edge through its environment, not its command line (`ps` shows it).
  RETAIL_EDGE_ENROLL_TOKEN="$token" "$edge" enroll --config "$config" --hub "$hub" \
    --out "$credentials"
elif [ -f "$credentials" ]; then
  say "already enrolled ($credentials); no --token given"
else
  die "not enrolled and no --token: ask HQ for one (retail-hub admin enroll-token --store $store)"
fi
if [ "$make_user" = 1 ]; then
  chown -R "$user:$user" "$data_dir"
fi

# 5. The service.
unit="$config_dir/retail-edge.service"
sed -e "s#/opt/retail-cv/venv#$venv#g" \
    -e "s#/etc/retail-cv#$config_dir#g" \
    -e "s#/var/lib/retail-cv#$data_dir#g" \
    -e "s#^User=retail-edge#User=$user#" \
    -e "s#^Group=retail-edge#Group=$user#" \
    "$here/systemd/retail-edge.service" > "$unit"
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
if [ "$systemd" = 1 ]; then
  install -m 0644 "$unit" /etc/systemd/system/retail-edge.service
  systemctl daemon-reload
  systemctl enable retail-edge.service
  systemctl restart retail-edge.service
  say "started: systemctl status retail-edge; journalctl -u retail-edge -f"
else
  say "unit written to $unit (not installed); the agent runs with:"
  echo "$exec_start"
fi

# 6. Check everything the box needs.
if [ "$doctor" = 1 ]; then
  if ! "$edge" doctor --config "$config"; then
    say "installed, but the checks above failed: fix them, then run $edge doctor --config $config"
    exit 3
  fi
fi
say "done: store $store, device $device, config $config"
