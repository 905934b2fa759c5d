#!/usr/bin/env bash
# Builds the pinned Prometheus and Alertmanager binaries that the integration
# tests start as real child processes (see DESIGN.md, "Tests with real parts").
# They go into the git-ignored .bin/ of the repository. A binary that is
# already there at the pinned module version is not built again, so a second
# run costs a few `go version -m` calls.
set -euo pipefail

PROMETHEUS_VERSION=v0.316.0
ALERTMANAGER_VERSION=v0.28.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${root}/.bin"
mkdir -p "${bin}"

# has_version BINARY MODULE VERSION: true if .bin/BINARY was built from
# MODULE at VERSION (the "mod" line of `go version -m`).
has_version() {
	local file="${bin}/$1" module="$2" want="$3"
	[[ -x "${file}" ]] || return 1
	go version -m "${file}" 2>/dev/null |
		awk -v m="${module}" -v v="${want}" '$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

# install MODULE VERSION BINARY:PACKAGE...: go install the packages whose
# binaries are missing or at another version, all in one go so they share
# the build of the module.
install() {
	local module="$1" version="$2"
	shift 2
	local pkgs=() spec name pkg
	for spec in "$@"; do
		name="${spec%%:*}"
		pkg="${spec#*:}"
		if has_version "${name}" "${module}" "${version}"; then
			echo "tools: ${name} ${version} already in .bin/"
		else
			pkgs+=("${pkg}@${version}")
		fi
	done
	if ((${#pkgs[@]} == 0)); then
		return 0
	fi
	echo "tools: building ${pkgs[*]} (takes a few minutes the first time)"
	local start=${SECONDS}
	# GOFLAGS from the environment (e.g. -mod=vendor) make no sense for a
	# module outside this one; the toolchain of this repository builds it.
	if ! GOBIN="${bin}" GOFLAGS=-buildvcs=false go install "${pkgs[@]}"; then
		echo "tools: FAILED to build ${pkgs[*]}" >&2
		exit 1
	fi
	for spec in "$@"; do
		name="${spec%%:*}"
		if ! has_version "${name}" "${module}" "${version}"; then
			echo "tools: FAILED: .bin/${name} is not ${module} ${version} after go install" >&2
			exit 1
		fi
	done
	echo "tools: built in $((SECONDS - start))s"
}

install github.com/prometheus/prometheus "${PROMETHEUS_VERSION}" \
	prometheus:github.com/prometheus/prometheus/cmd/prometheus \
	promtool:github.com/prometheus/prometheus/cmd/promtool

install github.com/prometheus/alertmanager "${ALERTMANAGER_VERSION}" \
	alertmanager:github.com/prometheus/alertmanager/cmd/alertmanager \
	amtool:github.com/prometheus/alertmanager/cmd/amtool
