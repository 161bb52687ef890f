#!/bin/bash
# Set up a flank VM (Debian 12 or Ubuntu), as root. `flank up` hands the VM this very file as its
# cloud-init user data; the README shows it (a test keeps the two the same). Settings, from the environment:
#   FLANK_USER     the user that runs the pipelines (created if missing; default: admin, Debian's cloud user)
#   FLANK_SOURCE   what pip installs flank from (default: flank-ops; or git+https://..., a path, a wheel)
#   FLANK_PROJECT  the project to create with `flank init` (optional)
#   FLANK_HOME     where flank keeps its state (default: ~FLANK_USER/flank)
#   FLANK_PIP_OPTIONS  more pip options (optional; e.g. --no-index --find-links DIR for a machine offline)
#   FLANK_BIN_DIR  where the `flank` link goes (default: /usr/local/bin, on every PATH)
set -euo pipefail
FLANK_USER="${FLANK_USER:-admin}"
FLANK_SOURCE="${FLANK_SOURCE:-flank-ops}"
FLANK_BIN_DIR="${FLANK_BIN_DIR:-/usr/local/bin}"

# 1. Debian packages (nothing to do when they are all installed)
missing=""
for package in git make cron gcc musl-tools graphviz python3-venv r-base-core; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

# 2. the user, flank in its own venv, and the link onto every PATH (`ssh vm flank status` too)
id "$FLANK_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$FLANK_USER"
user_home="$(getent passwd "$FLANK_USER" | cut -d: -f6)"
FLANK_HOME="${FLANK_HOME:-$user_home/flank}"
as_user() {  # in the user's home, with a login's environment (none of root's)
  (cd "$user_home" && runuser -u "$FLANK_USER" -- env -i HOME="$user_home" USER="$FLANK_USER" LOGNAME="$FLANK_USER" \
    PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 FLANK_HOME="$FLANK_HOME" "$@")
}
as_user python3 -m venv "$user_home/.flank-venv"
as_user "$user_home/.flank-venv/bin/pip" install -q ${FLANK_PIP_OPTIONS:-} "$FLANK_SOURCE"
mkdir -p "$FLANK_BIN_DIR" && ln -sf "$user_home/.flank-venv/bin/flank" "$FLANK_BIN_DIR/flank"

# 3. the project: its bare repo to push to (again on a kept FLANK_HOME: repairs the hooks, changes nothing else)
mkdir -p "$FLANK_HOME" && chown "$FLANK_USER": "$FLANK_HOME"
if [ -n "${FLANK_PROJECT:-}" ]; then
  as_user "$FLANK_BIN_DIR/flank" init "$FLANK_PROJECT"
fi

# 4. cron (the schedules) and `flank serve` on 127.0.0.1 as a service (the site, through an ssh tunnel)
if [ -d /run/systemd/system ]; then
  systemctl enable --now cron
  as_user "$FLANK_BIN_DIR/flank" serve --print-systemd-unit \
    | sed -e "/^\[Service\]/a User=$FLANK_USER" -e "s/^WantedBy=default.target/WantedBy=multi-user.target/" \
    > /etc/systemd/system/flank-serve.service
  systemctl daemon-reload
  systemctl enable --now flank-serve
else
  echo "no systemd here: start cron and \`flank serve\` yourself"
fi
echo "flank: VM set up for $FLANK_USER (FLANK_HOME=$FLANK_HOME)"
