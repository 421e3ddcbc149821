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

# Wait up to 30 s for URL to answer (curl -f); die naming WHAT if not.
function failpredict_wait_for {
    local url=$1 what=$2
    local tries=30
    while (( tries-- > 0 )); do
        if curl -sf -o /dev/null "$url"; then
            return 0
        fi
        sleep 1
    done
    die $LINENO "$what did not answer $url"
}

function start_failpredict_influxdb {
    sudo systemctl enable influxdb
    sudo systemctl restart influxdb
    local url="http://$FAILPREDICT_INFLUXDB_HOST:$FAILPREDICT_INFLUXDB_PORT"
    failpredict_wait_for "$url/ping" InfluxDB
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

# --- Prometheus and node_exporter (FAILPREDICT_DATASOURCE=prometheus) -------

function install_failpredict_prometheus {
    install_package prometheus
}

# The scrape interval and the "node" job of etc/prometheus/scrape-config.yml,
# with one static target per FAILPREDICT_PROMETHEUS_NODES entry labelled
# with its Nova hostname (the fqdn label the datasource reads); Prometheus
# listens on FAILPREDICT_PROMETHEUS_HOST:PORT (Debian's ARGS).
function configure_failpredict_prometheus {
    local interval=$FAILPREDICT_PROMETHEUS_SCRAPE_INTERVAL
    local label=$FAILPREDICT_PROMETHEUS_HOST_LABEL
    local node name target
    # checked here: a die inside the pipeline below would end its subshell
    for node in $FAILPREDICT_PROMETHEUS_NODES; do
        name=${node%%=*}
        target=${node#*=}
        if [[ -z "$name" || "$name" == "$node" || -z "$target" ]]; then
            die $LINENO "FAILPREDICT_PROMETHEUS_NODES: '$node' is not HOSTNAME=ADDRESS:PORT"
        fi
    done
    [[ -n "$FAILPREDICT_PROMETHEUS_NODES" ]] ||
        die $LINENO "FAILPREDICT_PROMETHEUS_NODES is empty"
    sudo mkdir -p "$(dirname "$FAILPREDICT_PROMETHEUS_CONF")"
    {
        echo "# written by the watcher-failpredict devstack plugin"
        echo "global:"
        echo "  scrape_interval: ${interval}s"
        echo "  evaluation_interval: ${interval}s"
        echo "scrape_configs:"
        echo "  - job_name: node"
        echo "    static_configs:"
        for node in $FAILPREDICT_PROMETHEUS_NODES; do
            name=${node%%=*}
            target=${node#*=}
            echo "      - targets: ['$target']"
            echo "        labels:"
            echo "          $label: '$name'"
        done
        # the libvirt exporter's own uuid label names the instances
        echo "  - job_name: libvirt"
        echo "    static_configs:"
        echo "      - targets:"
        for node in $FAILPREDICT_PROMETHEUS_NODES; do
            target=${node#*=}
            echo "          - '${target%:*}:$FAILPREDICT_LIBVIRT_EXPORTER_PORT'"
        done
    } | sudo tee "$FAILPREDICT_PROMETHEUS_CONF" >/dev/null
    if [[ -x /usr/bin/promtool ]]; then
        sudo /usr/bin/promtool check config "$FAILPREDICT_PROMETHEUS_CONF" >/dev/null ||
            die $LINENO "promtool refused $FAILPREDICT_PROMETHEUS_CONF"
    fi
    echo "ARGS=\"--web.listen-address=$FAILPREDICT_PROMETHEUS_HOST:$FAILPREDICT_PROMETHEUS_PORT\"" |
        sudo tee "$FAILPREDICT_PROMETHEUS_DEFAULTS" >/dev/null
}

function start_failpredict_prometheus {
    sudo systemctl enable prometheus
    sudo systemctl restart prometheus
    failpredict_wait_for \
        "http://$FAILPREDICT_PROMETHEUS_HOST:$FAILPREDICT_PROMETHEUS_PORT/-/ready" \
        Prometheus
}

function stop_failpredict_prometheus {
    sudo systemctl stop prometheus || true
}

function install_failpredict_node_exporter {
    install_package prometheus-node-exporter prometheus-libvirt-exporter
}

# node_exporter on this node's address (HOST_IP), with the collectors the
# datasource reads; the libvirt exporter beside it.
function configure_failpredict_node_exporter {
    local listen="${HOST_IP:-$SERVICE_HOST}:$FAILPREDICT_NODE_EXPORTER_PORT"
    echo "ARGS=\"--web.listen-address=$listen --collector.disable-defaults --collector.cpu --collector.meminfo --collector.loadavg --collector.diskstats --collector.netdev\"" |
        sudo tee "$FAILPREDICT_NODE_EXPORTER_DEFAULTS" >/dev/null
    # the libvirt exporter, with the Nova metadata labels; it runs as the
    # prometheus user, which needs libvirt's group for qemu:///system
    listen="${HOST_IP:-$SERVICE_HOST}:$FAILPREDICT_LIBVIRT_EXPORTER_PORT"
    echo "ARGS=\"--web.listen-address=$listen --libvirt.uri=$FAILPREDICT_LIBVIRT_URI --libvirt.export-nova-metadata\"" |
        sudo tee "$FAILPREDICT_LIBVIRT_EXPORTER_DEFAULTS" >/dev/null
    if getent group libvirt >/dev/null && getent passwd prometheus >/dev/null; then
        sudo usermod -a -G libvirt prometheus
    fi
}

function start_failpredict_node_exporter {
    local svc
    for svc in prometheus-node-exporter prometheus-libvirt-exporter; do
        sudo systemctl enable "$svc"
        sudo systemctl restart "$svc"
    done
}

function stop_failpredict_node_exporter {
    sudo systemctl stop prometheus-node-exporter prometheus-libvirt-exporter || true
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
        # without a URL: the Prometheus this plugin installs
        local prometheus_url=${FAILPREDICT_PROMETHEUS_URL:-http://$FAILPREDICT_PROMETHEUS_HOST:$FAILPREDICT_PROMETHEUS_PORT}
        iniset "$conf" failpredict prometheus_url "$prometheus_url"
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

# The Prometheus server runs on SERVICE_HOST's node, node_exporter on every
# node that runs n-cpu, when the plugin installs them (settings enable the
# services for FAILPREDICT_DATASOURCE=prometheus without a URL).
function is_failpredict_prometheus_node {
    is_service_enabled failpredict-prometheus &&
        [[ "${HOST_IP:-$SERVICE_HOST}" == "$SERVICE_HOST" ]]
}

function is_failpredict_node_exporter_node {
    is_service_enabled failpredict-node-exporter && is_service_enabled n-cpu
}

function failpredict_main {
    local mode=$1 phase=$2
    if [[ "$mode" == "stack" && "$phase" == "install" ]]; then
        if is_service_enabled failpredict-influxdb; then
            install_failpredict_influxdb
        fi
        if is_service_enabled failpredict-collectd; then
            install_failpredict_collectd
        fi
        if is_failpredict_prometheus_node; then
            install_failpredict_prometheus
        fi
        if is_failpredict_node_exporter_node; then
            install_failpredict_node_exporter
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
        if is_failpredict_node_exporter_node; then
            configure_failpredict_node_exporter
            start_failpredict_node_exporter
        fi
        if is_failpredict_prometheus_node; then
            configure_failpredict_prometheus
            start_failpredict_prometheus
        fi
        if is_service_enabled watcher-api watcher-decision-engine; then
            configure_watcher_failpredict
        fi
    elif [[ "$mode" == "stack" && "$phase" == "extra" ]]; then
        restart_watcher_services
    elif [[ "$mode" == "unstack" ]]; then
        if is_failpredict_prometheus_node; then
            stop_failpredict_prometheus
        fi
        if is_failpredict_node_exporter_node; then
            stop_failpredict_node_exporter
        fi
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
