# shellcheck shell=bash
# tests/lib/zk.sh: the ZooKeeper launcher moved into the product (haproxy/zookeeper.sh, which
# `make run` uses too); this file only sources it, for scripts written before the move.
# shellcheck source=haproxy/zookeeper.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../haproxy/zookeeper.sh"
# shellcheck source=tests/lib/proc.sh
. "$(dirname "${BASH_SOURCE[0]}")/proc.sh"
