# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

# shellcheck shell=bash
# devstack plugin of watcher-failpredict.
#
#   enable_plugin watcher https://opendev.org/openstack/watcher
#   enable_plugin watcher-failpredict <git url> [branch]
#
# Installs InfluxDB with its collectd input (service failpredict-influxdb),
# collectd pointed at it on every node (failpredict-collectd), installs the
# plugin into Watcher's Python environment, writes [failpredict] into
# watcher.conf and restarts Watcher's services. Settings: devstack/settings.
# Sourced by devstack with the phase as arguments; sourced without them it
# only defines its functions (tests/unit/test_devstack.py does that).

FAILPREDICT_PLUGIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# --- InfluxDB ----------------------------------------------------------------

function install_failpredict_influxdb {
    install_package influxdb
}

# Append (once) the collectd input of etc/influxdb/collectd-input.conf to
# influxdb.conf, listening on the InfluxDB host's address.
function configure_failpredict_influxdb {
    local marker="# watcher-failpredict collectd input"
    if ! sudo grep -q "^$marker" "$FAILPREDICT_INFLUXDB_CONF" 2>/dev/null; then
        {
            echo "$marker"
            sed -e "s|^\(\s*bind-address = \).*|\1\"$FAILPREDICT_INFLUXDB_HOST:$FAILPREDICT_COLLECTD_PORT\"|" \
                -e "s|^\(\s*database = \).*|\1\"$FAILPREDICT_INFLUXDB_DATABASE\"|" \
                "$FAILPREDICT_PLUGIN_DIR/etc/influxdb/collectd-input.conf"
        } | sudo tee -a "$FAILPREDICT_INFLUXDB_CONF" >/dev/null
    fi
}

function start_failpredict_influxdb {
    sudo systemctl enable influxdb
    sudo systemctl restart influxdb
    local url="http://$FAILPREDICT_INFLUXDB_HOST:$FAILPREDICT_INFLUXDB_PORT"
    local i
    for i in $(seq 1 30); do
        if curl -sf -o /dev/null "$url/ping"; then
            break
        fi
        [[ $i -eq 30 ]] && die $LINENO "InfluxDB did not answer $url/ping"
        sleep 1
    done
    curl -sf -o /dev/null -XPOST "$url/query" \
        --data-urlencode "q=CREATE DATABASE \"$FAILPREDICT_INFLUXDB_DATABASE\""
}

function stop_failpredict_influxdb {
    sudo systemctl stop influxdb || true
}

# --- collectd ------------------------------------------------------------------

function install_failpredict_collectd {
    install_package collectd-core
}

# etc/collectd/compute-host.conf with this node's Nova hostname and the
# InfluxDB collectd input; the virt plugin too when VNF metrics come from
# libvirt.
function configure_failpredict_collectd {
    local host
    host=$(hostname)
    sudo mkdir -p "$(dirname "$FAILPREDICT_COLLECTD_CONF")"
    {
        sed -e "s|^Hostname .*|Hostname \"$host\"|" \
            -e "s|^Interval .*|Interval $FAILPREDICT_COLLECTD_INTERVAL|" \
            -e "s|^\(\s*Server \).*|\1\"$FAILPREDICT_INFLUXDB_HOST\" \"$FAILPREDICT_COLLECTD_PORT\"|" \
            "$FAILPREDICT_PLUGIN_DIR/etc/collectd/compute-host.conf"
        if [[ "$FAILPREDICT_INSTANCE_METRICS" == "virt" ]] && is_service_enabled n-cpu; then
            sed -e "s|^\(\s*Connection \).*|\1\"$FAILPREDICT_LIBVIRT_URI\"|" \
                "$FAILPREDICT_PLUGIN_DIR/etc/collectd/compute-host-virt.conf"
        fi
    } | sudo tee "$FAILPREDICT_COLLECTD_CONF" >/dev/null
    # "collectd -t" of collectd 5.12 exits 0 even on a broken file; -T
    # loads and configures every plugin and reads once, and fails on any
    # error (the virt plugin needs libvirtd up: nova's install started it).
    sudo /usr/sbin/collectd -T -C "$FAILPREDICT_COLLECTD_CONF" >/dev/null ||
        die $LINENO "collectd refused $FAILPREDICT_COLLECTD_CONF"
}

function start_failpredict_collectd {
    sudo systemctl enable collectd
    sudo systemctl restart collectd
}

function stop_failpredict_collectd {
    sudo systemctl stop collectd || true
}

# --- the plugin in Watcher ---------------------------------------------------

function install_watcher_failpredict {
    # Watcher's environment: devstack's global venv or system Python.
    setup_develop "$WATCHER_FAILPREDICT_DIR"
}

# [failpredict] in watcher.conf; every option written here is one the
# plugin defines (tests/unit/test_devstack.py checks it).
function configure_watcher_failpredict {
    local conf=${WATCHER_CONF:-/etc/watcher/watcher.conf}
    local url="http://$FAILPREDICT_INFLUXDB_HOST:$FAILPREDICT_INFLUXDB_PORT"
    local record_risk=$FAILPREDICT_RECORD_RISK
    iniset "$conf" failpredict datasource "$FAILPREDICT_DATASOURCE"
    iniset "$conf" failpredict influxdb_url "$url"
    iniset "$conf" failpredict influxdb_database "$FAILPREDICT_INFLUXDB_DATABASE"
    iniset "$conf" failpredict cpu_form percent
    iniset "$conf" failpredict instance_metrics "$FAILPREDICT_INSTANCE_METRICS"
    if [[ "$FAILPREDICT_DATASOURCE" == "prometheus" ]]; then
        iniset "$conf" failpredict prometheus_url "$FAILPREDICT_PROMETHEUS_URL"
        iniset "$conf" failpredict prometheus_host_label "$FAILPREDICT_PROMETHEUS_HOST_LABEL"
        iniset "$conf" failpredict prometheus_scrape_interval "$FAILPREDICT_PROMETHEUS_SCRAPE_INTERVAL"
        # the risk recorder writes into InfluxDB: only if there is one
        if ! is_service_enabled failpredict-influxdb; then
            record_risk=False
        fi
    fi
    iniset "$conf" failpredict record_risk "$record_risk"
    iniset "$conf" failpredict model_path "$FAILPREDICT_MODEL_PATH"
    if [[ -n "$FAILPREDICT_MODEL_SHA256" ]]; then
        iniset "$conf" failpredict model_sha256 "$FAILPREDICT_MODEL_SHA256"
    fi
    sudo install -d -o "$STACK_USER" "$(dirname "$FAILPREDICT_MODEL_PATH")"
}

# Watcher's services read the plugin's entry points and [failpredict] at
# start: restart the ones this node runs.
function restart_watcher_services {
    local svc
    for svc in watcher-api watcher-decision-engine watcher-applier; do
        if is_service_enabled "$svc"; then
            restart_service "devstack@$svc"
        fi
    done
}

# --- devstack phases -------------------------------------------------------------

function failpredict_main {
    local mode=$1 phase=$2
    if [[ "$mode" == "stack" && "$phase" == "install" ]]; then
        if is_service_enabled failpredict-influxdb; then
            install_failpredict_influxdb
        fi
        if is_service_enabled failpredict-collectd; then
            install_failpredict_collectd
        fi
        if is_service_enabled watcher-api watcher-decision-engine; then
            install_watcher_failpredict
        fi
    elif [[ "$mode" == "stack" && "$phase" == "post-config" ]]; then
        if is_service_enabled failpredict-influxdb; then
            configure_failpredict_influxdb
            start_failpredict_influxdb
        fi
        if is_service_enabled failpredict-collectd; then
            configure_failpredict_collectd
            start_failpredict_collectd
        fi
        if is_service_enabled watcher-api watcher-decision-engine; then
            configure_watcher_failpredict
        fi
    elif [[ "$mode" == "stack" && "$phase" == "extra" ]]; then
        restart_watcher_services
    elif [[ "$mode" == "unstack" ]]; then
        if is_service_enabled failpredict-collectd; then
            stop_failpredict_collectd
        fi
        if is_service_enabled failpredict-influxdb; then
            stop_failpredict_influxdb
        fi
    fi
}

if [[ $# -ge 1 ]]; then
    failpredict_main "$@"
fi
