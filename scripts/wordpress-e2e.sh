#!/usr/bin/env bash
# Real WordPress sites on loopback for end-to-end tests and benchmarks (TEST ONLY).
#
#   scripts/wordpress-e2e.sh start  [--name NAME] [--port PORT] [--workers N] [--activate-plugin] [--fresh]
#   scripts/wordpress-e2e.sh stop   [--name NAME | --all] [--purge]
#   scripts/wordpress-e2e.sh status [--name NAME]
#   scripts/wordpress-e2e.sh seed   [--name NAME] --posts N [--type post] [--hooks]
#   scripts/wordpress-e2e.sh eval   [--name NAME] FILE|-
#   scripts/wordpress-e2e.sh url    [--name NAME]
#
# Each site is Debian's WordPress package (6.1) in a private tree under $WP_E2E_DIR/NAME/www
# (hard links for core, a real copy of wp-content), database wp_e2e_NAME on MariaDB
# 127.0.0.1:3306 (root, empty password), served by `php -S 127.0.0.1:PORT` with
# PHP_CLI_SERVER_WORKERS workers and opcache. `start` prints one JSON object on stdout:
#   {"name","url","port","admin_user","admin_password","app_password","db_name","root","pid",
#    "wp_version","workers"}
# and keeps it in $WP_E2E_DIR/NAME/site.json. Everything else goes to stderr.
#
# Environment:
#   WP_E2E_DIR            state directory (default /tmp/igny8-wp-e2e)
#   WP_E2E_START_TIMEOUT  seconds to wait for GET /wp-json/ to answer 200 (default 60)
#   WP_E2E_PLUGIN_DIR     plugin to link as wp-content/plugins/igny8-bridge
#                         (default: REPO/wordpress-plugin/igny8-bridge when it exists)
#   WP_E2E_ALLOWED_HOSTS  extra hosts (comma-separated) that the site may call: added to
#                         WP_ACCESSIBLE_HOSTS and to the test mu-plugin's loopback allow-list
#   WP_E2E_DEBUG=1        WP_DEBUG on, logged to NAME/logs/wp-debug.log
#   WP_E2E_DISABLE_CRON=1 DISABLE_WP_CRON for web requests too
#   (the last three are read when wp-config.php is written: install, or start of a stopped site)
#
# The test-only mu-plugins (scripts/wordpress/mu-plugins/, copied into every site): igny8-e2e-loopback.php
# widens wp_safe_remote_post() to loopback on any port; igny8-e2e-seo.php defines WPSEO_VERSION or
# RANK_MATH_VERSION when the option igny8_e2e_seo_plugin is 'yoast' or 'rank_math' (an SEO plugin
# "active" for the companion plugin); igny8-e2e-hold.php, while wp-content/igny8-e2e-hold/hold.json
# exists, holds the matching REST requests after their work, before their answer, until the test
# releases them (a caller killed mid-request). Never install them on a real site.
set -euo pipefail
umask 022

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
PHP_DIR="$SCRIPT_DIR/wordpress"
STATE_ROOT="${WP_E2E_DIR:-/tmp/igny8-wp-e2e}"
WP_SRC=/usr/share/wordpress
DB_HOST=127.0.0.1
DB_PORT=3306
DB_USER=root
DEFAULT_NAME=e2e
DEFAULT_PORT=8881
DEFAULT_WORKERS=4
START_TIMEOUT="${WP_E2E_START_TIMEOUT:-60}"
PLUGIN_SLUG=igny8-bridge
PLUGIN_SRC="${WP_E2E_PLUGIN_DIR:-$REPO_ROOT/wordpress-plugin/$PLUGIN_SLUG}"
# php for the CLI helpers (install, seed, eval): errors to stderr, never into stdout/JSON.
PHP_CLI=(php -d memory_limit=1G -d display_errors=stderr -d log_errors=0 -d error_reporting=22527)

log() { printf '[wordpress-e2e] %s\n' "$*" >&2; }
die() {
    printf '[wordpress-e2e] error: %s\n' "$*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# site paths

set_site() { # NAME
    local name=$1
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ ]] ||
        die "bad site name '$name' (letters, digits, _ and -, at most 40)"
    SITE_NAME=$name
    SITE_DIR="$STATE_ROOT/$name"
    SITE_ROOT="$SITE_DIR/www"
    SITE_JSON="$SITE_DIR/site.json"
    SITE_LOGS="$SITE_DIR/logs"
    SITE_PIDFILE="$SITE_DIR/server.pid"
    SITE_INSTALLED="$SITE_DIR/.installed"
    DB_NAME="wp_e2e_${name//-/_}"
}

json_get() { # KEY -> value from site.json ('' when missing)
    [[ -f $SITE_JSON ]] || return 0
    php "$PHP_DIR/json.php" get "$SITE_JSON" "$1"
}

json_pick() { # JSONTEXT KEY -> one field of a JSON object
    # shellcheck disable=SC2016  # PHP code
    php -r 'echo json_decode($argv[1], true)[$argv[2]] ?? "";' "$1" "$2"
}

json_set() { # K=V | K:=JSON ... -> writes site.json, prints it
    mkdir -p "$SITE_DIR"
    php "$PHP_DIR/json.php" set "$SITE_JSON" "$@"
}

wp_php() { # SCRIPT [ARGS...]: run a helper inside the site's WordPress
    WP_E2E_ROOT="$SITE_ROOT" WP_E2E_URL="http://127.0.0.1:${SITE_PORT:-$(json_get port)}" \
        WP_E2E_NAME="$SITE_NAME" "${PHP_CLI[@]}" "$PHP_DIR/$1" "${@:2}"
}

# ---------------------------------------------------------------------------------------------
# locking: one lock file per site, outside the site directory (so --purge can remove that)

LOCK_FD=
lock_site() { # [-s] (shared) ; waits up to 10 minutes
    local mode=-x
    [[ ${1:-} == -s ]] && mode=-s
    mkdir -p "$STATE_ROOT/.locks"
    exec {LOCK_FD}>"$STATE_ROOT/.locks/$SITE_NAME.lock"
    if ! flock -n "$mode" "$LOCK_FD"; then
        log "waiting for the lock of site '$SITE_NAME' (another wordpress-e2e.sh is working on it)"
        flock -w 600 "$mode" "$LOCK_FD" || die "timed out waiting for the lock of site '$SITE_NAME'"
    fi
}

# Close every inherited fd above 2 (the site lock, a caller's pipes) in the current process:
# a backgrounded server that kept the lock fd would make the next run hang on the lock.
close_inherited_fds() {
    local fd
    for fd in /proc/self/fd/*; do
        fd=${fd##*/}
        if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
            eval "exec $fd>&-" 2>/dev/null || true
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# prerequisites

ensure_packages() { # [EXTRA_PACKAGE...]
    local pkgs=("$@")
    if command -v php >/dev/null 2>&1 && [[ -f $WP_SRC/wp-load.php ]] && command -v mysql >/dev/null 2>&1 &&
        command -v curl >/dev/null 2>&1 && php -m 2>/dev/null | grep -qx mysqli &&
        php -m 2>/dev/null | grep -qx gd && ((${#pkgs[@]} == 0)); then
        return 0
    fi
    # php-gd: WordPress's image editor, so uploads get their sub-sizes (srcset).
    pkgs+=(wordpress php-cli php-mysql php-curl php-xml php-mbstring php-intl php-gd mariadb-client curl)
    log "installing Debian packages (${pkgs[*]}): this takes ~20-40 s"
    mkdir -p "$STATE_ROOT/.locks"
    (
        # one installer at a time among our own runs; apt waits for anyone else's dpkg lock
        flock -w 900 9 || exit 1
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o DPkg::Lock::Timeout=600 update -qq &&
            apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${pkgs[@]}"
    ) 9>"$STATE_ROOT/.locks/apt.lock" </dev/null >&2 || die "apt-get install failed"
    [[ -f $WP_SRC/wp-load.php ]] || die "$WP_SRC/wp-load.php missing after installing wordpress"
}

mysql_q() { # SQL...
    mysql -h"$DB_HOST" -P"$DB_PORT" -u"$DB_USER" --batch --skip-column-names -e "$*"
}

ensure_mariadb() {
    if mysqladmin -h"$DB_HOST" -P"$DB_PORT" -u"$DB_USER" --connect-timeout=2 ping >/dev/null 2>&1; then
        return 0
    fi
    [[ -x /usr/sbin/mariadbd ]] || ensure_packages mariadb-server
    log "starting MariaDB"
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd </dev/null >&2 ||
        die "could not start /usr/sbin/mariadbd"
    local i
    for ((i = 0; i < 120; i++)); do
        if mysqladmin -h"$DB_HOST" -P"$DB_PORT" -u"$DB_USER" --connect-timeout=2 ping >/dev/null 2>&1; then
            log "MariaDB is up"
            return 0
        fi
        sleep 0.5
    done
    die "MariaDB did not answer on $DB_HOST:$DB_PORT within 60 s (root with an empty password is expected)"
}

db_exists() {
    [[ -n $(mysql_q "SELECT 1 FROM information_schema.schemata WHERE schema_name='$DB_NAME'" 2>/dev/null) ]]
}

# ---------------------------------------------------------------------------------------------
# server process

pid_alive() { # PID -> running and not a zombie
    local pid=$1 stat
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

server_pid() { # -> pid of this site's php -S (whatever its port) when it runs, else returns 1
    local pid cmd
    pid=$(cat "$SITE_PIDFILE" 2>/dev/null) || return 1
    pid_alive "$pid" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmd == *" -S 127.0.0.1:"*" -t $SITE_ROOT "* ]] || return 1
    echo "$pid"
}

port_in_use() { # PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

http_code() { # URL -> HTTP status code, 000 when no answer
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true
}

stop_server() {
    local pid i
    pid=$(server_pid) || {
        rm -f "$SITE_PIDFILE"
        return 0
    }
    log "stopping php -S of '$SITE_NAME' (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    # workers of the group that outlived their master
    pkill -KILL -g "$pid" 2>/dev/null || true
    rm -f "$SITE_PIDFILE"
}

start_server() { # WORKERS
    local workers=$1 port=$SITE_PORT url="http://127.0.0.1:$SITE_PORT" pid="" i code t0
    if port_in_use "$port"; then
        die "port $port is already in use by another process: pick another one with --port"
    fi
    mkdir -p "$SITE_LOGS"
    rm -f "$SITE_PIDFILE"
    t0=$(now_ms)
    (
        close_inherited_fds
        cd "$SITE_ROOT"
        export PHP_CLI_SERVER_WORKERS="$workers"
        # setsid: own process group, so `stop` ends the master and all its workers at once.
        # bash writes its pid, then execs php in place: the pid file holds php's pid.
        # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner bash
        exec setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$SITE_PIDFILE" \
            php -d opcache.enable=1 -d opcache.enable_cli=1 -d opcache.revalidate_freq=0 \
            -d opcache.memory_consumption=128 -d memory_limit=512M -d display_errors=0 \
            -d log_errors=1 -d "error_log=$SITE_LOGS/php-error.log" -d max_execution_time=120 \
            -d post_max_size=64M -d upload_max_filesize=64M \
            -S "127.0.0.1:$port" -t "$SITE_ROOT" "$PHP_DIR/router.php" \
            >>"$SITE_LOGS/server.log" 2>&1 </dev/null
    ) &
    for ((i = 0; i < 50; i++)); do
        pid=$(cat "$SITE_PIDFILE" 2>/dev/null || true)
        [[ -n $pid ]] && break
        sleep 0.05
    done
    [[ -n $pid ]] || die "php -S did not start (see $SITE_LOGS/server.log)"
    log "php -S 127.0.0.1:$port started (pid $pid, $workers workers), waiting for $url/wp-json/"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! pid_alive "$pid"; then
            tail -n 20 "$SITE_LOGS/server.log" >&2 || true
            die "php -S exited during startup (log: $SITE_LOGS/server.log)"
        fi
        code=$(http_code "$url/wp-json/")
        if [[ $code == 200 ]]; then
            log "site '$SITE_NAME' answers on $url ($(($(now_ms) - t0)) ms)"
            SERVER_PID=$pid
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$SITE_LOGS/server.log" >&2 || true
    stop_server
    die "GET $url/wp-json/ did not answer 200 within ${START_TIMEOUT}s (last: $code; logs in $SITE_LOGS)"
}

# ---------------------------------------------------------------------------------------------
# install

link_tree() { # SRC DST: hard links (fast, no space); a copy when across file systems
    cp -al "$1" "$2" 2>/dev/null || {
        rm -rf "$2"
        cp -a "$1" "$2"
    }
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

build_tree() {
    local f
    rm -rf "$SITE_ROOT"
    mkdir -p "$SITE_ROOT" "$SITE_LOGS"
    # Core: hard links (not symlinks: PHP resolves __FILE__ through symlinks, and a symlinked
    # wp-load.php would load Debian's /usr/share/wordpress/wp-config.php instead of ours).
    for f in "$WP_SRC"/*.php "$WP_SRC"/*.html; do
        [[ $(basename "$f") == wp-config.php || $(basename "$f") == wp-config-sample.php ]] && continue
        ln "$f" "$SITE_ROOT/" 2>/dev/null || cp -a "$f" "$SITE_ROOT/"
    done
    link_tree "$WP_SRC/wp-admin" "$SITE_ROOT/wp-admin"
    link_tree "$WP_SRC/wp-includes" "$SITE_ROOT/wp-includes"
    # wp-content: a real copy (plugins, themes); translations are never written: hard links.
    mkdir -p "$SITE_ROOT/wp-content/uploads" "$SITE_ROOT/wp-content/mu-plugins"
    cp -a "$WP_SRC/wp-content/plugins" "$WP_SRC/wp-content/themes" "$SITE_ROOT/wp-content/"
    [[ -d $WP_SRC/wp-content/languages ]] && link_tree "$WP_SRC/wp-content/languages" "$SITE_ROOT/wp-content/languages"
    printf '<?php\n// Silence is golden.\n' >"$SITE_ROOT/wp-content/index.php"
    write_config
}

write_config() {
    local k debug=false cron="" hosts="${WP_E2E_ALLOWED_HOSTS:-}"
    # Salts once per site (kept when wp-config.php is rewritten, so cookies stay valid).
    if [[ ! -f $SITE_DIR/wp-salts.php ]]; then
        {
            printf '<?php\n'
            for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
                printf "define('%s', '%s');\n" "$k" "$(random_hex 32)"
            done
        } >"$SITE_DIR/wp-salts.php"
    fi
    [[ ${WP_E2E_DEBUG:-} == 1 ]] && debug=true
    [[ ${WP_E2E_DISABLE_CRON:-} == 1 ]] && cron="define('DISABLE_WP_CRON', true);"
    [[ $hosts =~ ^[A-Za-z0-9.:,*_-]*$ ]] || die "WP_E2E_ALLOWED_HOSTS: only host names, commas and *"
    cat >"$SITE_ROOT/wp-config.php" <<EOF
<?php
/*
 * wp-config.php of the e2e test site '$SITE_NAME', written by scripts/wordpress-e2e.sh.
 * TEST ONLY: throwaway site on loopback, root database user with an empty password.
 */
define('DB_NAME', '$DB_NAME');
define('DB_USER', '$DB_USER');
define('DB_PASSWORD', '');
define('DB_HOST', '$DB_HOST:$DB_PORT');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
\$table_prefix = 'wp_';

require '$SITE_DIR/wp-salts.php';
define('WP_HOME', 'http://127.0.0.1:$SITE_PORT');
define('WP_SITEURL', 'http://127.0.0.1:$SITE_PORT');
// 'local' makes Application Passwords available over plain http.
define('WP_ENVIRONMENT_TYPE', 'local');
define('DISALLOW_FILE_MODS', true);
define('DISALLOW_FILE_EDIT', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
// No calls to the internet (update checks, pings): only this site, localhost and these hosts.
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_ACCESSIBLE_HOSTS', '$hosts');
define('IGNY8_E2E_ALLOWED_HOSTS', '$hosts');
define('IGNY8_E2E_SITE', '$SITE_NAME');
define('WP_DEBUG', $debug);
define('WP_DEBUG_DISPLAY', false);
define('WP_DEBUG_LOG', '$SITE_LOGS/wp-debug.log');
define('FS_METHOD', 'direct');
if (PHP_SAPI === 'cli') {
    // CLI helpers (install, seed, eval) never spawn wp-cron over HTTP; web requests do.
    defined('DISABLE_WP_CRON') || define('DISABLE_WP_CRON', true);
    // A fatal error in eval'd code goes to stderr with the exit code 255, not as an HTML page.
    define('WP_DISABLE_FATAL_ERROR_HANDLER', true);
}
$cron

if (!defined('ABSPATH')) {
    define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
EOF
}

link_extras() { # the test mu-plugins and, when present, the plugin under development
    local plugin_link="$SITE_ROOT/wp-content/plugins/$PLUGIN_SLUG"
    mkdir -p "$SITE_ROOT/wp-content/mu-plugins"
    cp "$PHP_DIR"/mu-plugins/igny8-e2e-*.php "$SITE_ROOT/wp-content/mu-plugins/"
    if [[ -d $PLUGIN_SRC ]]; then
        if [[ -e $plugin_link && ! -L $plugin_link ]]; then
            rm -rf "$plugin_link"
        fi
        ln -sfn "$(cd "$PLUGIN_SRC" && pwd -P)" "$plugin_link"
    elif [[ -L $plugin_link ]]; then
        rm -f "$plugin_link"
    fi
}

wp_eval_code() { # PHP code without the opening tag
    local tmp rc=0
    mkdir -p "$SITE_DIR/tmp"
    tmp=$(mktemp "$SITE_DIR/tmp/code.XXXXXX")
    printf '<?php\n%s\n' "$1" >"$tmp"
    wp_php eval.php "$tmp" || rc=$?
    rm -f "$tmp"
    return "$rc"
}

activate_plugin() {
    [[ -d $PLUGIN_SRC ]] || die "--activate-plugin: no plugin folder at $PLUGIN_SRC"
    local out
    out=$(wp_php plugin.php) || die "could not activate the plugin $PLUGIN_SLUG"
    log "plugin: $out"
}

install_site() {
    local t0 out admin_password app_password wp_version
    t0=$(now_ms)
    log "installing site '$SITE_NAME' (database $DB_NAME, $SITE_ROOT)"
    stop_server
    rm -f "$SITE_INSTALLED" "$SITE_JSON"
    mysql_q "DROP DATABASE IF EXISTS \`$DB_NAME\`; CREATE DATABASE \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" ||
        die "could not create database $DB_NAME"
    build_tree
    link_extras
    out=$(wp_php install.php 2>>"$SITE_LOGS/install.log") || {
        tail -n 20 "$SITE_LOGS/install.log" >&2
        die "WordPress install failed (log: $SITE_LOGS/install.log)"
    }
    admin_password=$(json_pick "$out" admin_password)
    out=$(wp_php setup.php 2>>"$SITE_LOGS/install.log") || {
        tail -n 20 "$SITE_LOGS/install.log" >&2
        die "site setup (permalinks, content, application password) failed (log: $SITE_LOGS/install.log)"
    }
    app_password=$(json_pick "$out" app_password)
    wp_version=$(json_pick "$out" wp_version)
    json_set name="$SITE_NAME" url="http://127.0.0.1:$SITE_PORT" port:="$SITE_PORT" \
        admin_user=admin admin_password="$admin_password" app_password="$app_password" \
        db_name="$DB_NAME" root="$SITE_ROOT" pid:=null wp_version="$wp_version" \
        workers:="$WORKERS" >/dev/null
    touch "$SITE_INSTALLED"
    log "installed WordPress $wp_version in $(($(now_ms) - t0)) ms"
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
    local name=$DEFAULT_NAME port="" workers="" activate=0 fresh=0 pid old_port t0
    t0=$(now_ms)
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --workers) workers=${2:?--workers needs a value}; shift 2 ;;
        --activate-plugin) activate=1; shift ;;
        --fresh) fresh=1; shift ;;
        *) die "start: unknown argument '$1'" ;;
        esac
    done
    set_site "$name"
    [[ -z $port || ($port =~ ^[0-9]+$ && port -ge 1024 && port -le 65535) ]] || die "bad --port '$port'"
    [[ -z $workers || ($workers =~ ^[0-9]+$ && workers -ge 2 && workers -le 64) ]] ||
        die "--workers must be 2..64 (one worker deadlocks when WordPress calls back into a service that calls it)"

    ensure_packages
    ensure_mariadb
    lock_site

    old_port=$(json_get port)
    SITE_PORT=${port:-${old_port:-$DEFAULT_PORT}}
    WORKERS=${workers:-$(json_get workers)}
    WORKERS=${WORKERS:-$DEFAULT_WORKERS}

    if ((fresh)); then
        log "--fresh: removing site '$SITE_NAME'"
        stop_server
        rm -rf "$SITE_DIR"
    fi

    if [[ -f $SITE_INSTALLED && -f $SITE_JSON && -f $SITE_ROOT/wp-config.php ]] && db_exists; then
        if pid=$(server_pid); then
            if [[ -n $port && $port != "$old_port" ]]; then
                die "site '$SITE_NAME' already runs on port $old_port: stop it first to move it to $port"
            fi
            link_extras
            ((activate)) && activate_plugin
            log "site '$SITE_NAME' already running (pid $pid)"
            json_set pid:="$pid" >/dev/null
            cat "$SITE_JSON"
            return 0
        fi
        write_config # picks up changes of this script and of the port
        if [[ $SITE_PORT != "$old_port" ]]; then
            log "moving site '$SITE_NAME' from port $old_port to $SITE_PORT"
            wp_eval_code "update_option('home', home_url()); update_option('siteurl', site_url());" >/dev/null
            json_set url="http://127.0.0.1:$SITE_PORT" port:="$SITE_PORT" >/dev/null
        fi
        link_extras
    else
        stop_server # e.g. its database was dropped while it ran
        port_in_use "$SITE_PORT" && die "port $SITE_PORT is already in use by another process: pick another one with --port"
        install_site
    fi
    ((activate)) && activate_plugin
    start_server "$WORKERS"
    json_set pid:="$SERVER_PID" workers:="$WORKERS" >/dev/null
    log "start took $(($(now_ms) - t0)) ms"
    cat "$SITE_JSON"
}

cmd_stop() {
    local name=$DEFAULT_NAME all=0 purge=0 d
    while (($#)); do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --all) all=1; shift ;;
        --purge) purge=1; shift ;;
        --keep) purge=0; shift ;;
        *) die "stop: unknown argument '$1'" ;;
        esac
    done
    if ((all)); then
        [[ -d $STATE_ROOT ]] || return 0
        for d in "$STATE_ROOT"/*/; do
            [[ -d $d ]] || continue
            d=$(basename "$d")
            [[ $d =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ ]] || continue
            # each site in its own process: its own lock, its own paths
            if ((purge)); then
                bash "${BASH_SOURCE[0]}" stop --name "$d" --purge
            else
                bash "${BASH_SOURCE[0]}" stop --name "$d"
            fi
        done
        return 0
    fi
    set_site "$name"
    lock_site
    SITE_PORT=$(json_get port)
    stop_server
    if [[ -f $SITE_JSON ]]; then
        json_set pid:=null >/dev/null
    fi
    if ((purge)); then
        log "purging site '$SITE_NAME' (database $DB_NAME, $SITE_DIR)"
        if command -v mysql >/dev/null 2>&1; then
            mysql_q "DROP DATABASE IF EXISTS \`$DB_NAME\`" 2>/dev/null ||
                log "warning: could not drop database $DB_NAME (is MariaDB running?)"
        fi
        rm -rf "$SITE_DIR"
    fi
}

parse_name_only() { # sets NAME from [--name NAME]; leaves other args in REST
    NAME=$DEFAULT_NAME
    REST=()
    while (($#)); do
        case $1 in
        --name) NAME=${2:?--name needs a value}; shift 2 ;;
        *) REST+=("$1"); shift ;;
        esac
    done
}

require_installed() {
    [[ -f $SITE_INSTALLED && -f $SITE_JSON ]] ||
        die "site '$SITE_NAME' is not installed (run: scripts/wordpress-e2e.sh start --name $SITE_NAME)"
    SITE_PORT=$(json_get port)
}

cmd_status() {
    parse_name_only "$@"
    ((${#REST[@]} == 0)) || die "status: unknown argument '${REST[0]}'"
    set_site "$NAME"
    if [[ ! -f $SITE_INSTALLED || ! -f $SITE_JSON ]]; then
        log "site '$SITE_NAME' is not installed"
        return 1
    fi
    SITE_PORT=$(json_get port)
    local pid
    if ! pid=$(server_pid); then
        log "site '$SITE_NAME' is installed but not running"
        return 1
    fi
    if [[ $(json_get pid) != "$pid" ]]; then
        json_set pid:="$pid" >/dev/null
    fi
    cat "$SITE_JSON"
}

cmd_url() {
    parse_name_only "$@"
    ((${#REST[@]} == 0)) || die "url: unknown argument '${REST[0]}'"
    set_site "$NAME"
    [[ -f $SITE_JSON ]] || die "site '$SITE_NAME' is not installed"
    json_get url
    echo
}

cmd_seed() {
    local posts="" type=post hooks=0
    parse_name_only "$@"
    set -- "${REST[@]+"${REST[@]}"}"
    while (($#)); do
        case $1 in
        --posts) posts=${2:?--posts needs a value}; shift 2 ;;
        --type) type=${2:?--type needs a value}; shift 2 ;;
        --hooks) hooks=1; shift ;;
        *) die "seed: unknown argument '$1'" ;;
        esac
    done
    [[ $posts =~ ^[0-9]+$ ]] || die "seed: --posts N is required"
    [[ $type =~ ^[a-z0-9_-]{1,20}$ ]] || die "seed: bad --type '$type'"
    set_site "$NAME"
    ensure_mariadb
    lock_site -s
    require_installed
    log "seeding $posts published '$type' posts into '$SITE_NAME'"
    WP_E2E_SEED_COUNT=$posts WP_E2E_SEED_TYPE=$type WP_E2E_SEED_HOOKS=$hooks wp_php seed.php
}

cmd_eval() {
    local src tmp rc=0
    parse_name_only "$@"
    ((${#REST[@]} == 1)) || die "eval: give exactly one FILE or - (stdin)"
    src=${REST[0]}
    set_site "$NAME"
    ensure_mariadb
    lock_site -s
    require_installed
    mkdir -p "$SITE_DIR/tmp"
    tmp=$(mktemp "$SITE_DIR/tmp/eval.XXXXXX")
    # shellcheck disable=SC2064  # expand $tmp now
    trap "rm -f '$tmp'" EXIT
    if [[ $src == - ]]; then
        cat >"$tmp.in"
    else
        [[ -f $src ]] || die "eval: no such file: $src"
        cat -- "$src" >"$tmp.in"
    fi
    # Accept code with or without the opening tag (no newline added: line numbers stay right).
    if ! head -c 4096 "$tmp.in" | tr -d '\n' | grep -Eq '^[[:space:]]*<\?php'; then
        printf '<?php ' >"$tmp"
    fi
    cat "$tmp.in" >>"$tmp"
    rm -f "$tmp.in"
    wp_php eval.php "$tmp" || rc=$?
    return "$rc"
}

main() {
    (($#)) || usage
    local cmd=$1
    shift
    case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    seed) cmd_seed "$@" ;;
    eval) cmd_eval "$@" ;;
    url) cmd_url "$@" ;;
    -h | --help | help) usage ;;
    *) die "unknown command '$cmd' (start, stop, status, seed, eval, url)" ;;
    esac
}

main "$@"
