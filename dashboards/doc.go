// Package dashboards holds slogate's Grafana dashboards (*.json) and the
// Grafana provisioning files that load them (provisioning/).
//
// The JSON files are the source of truth: edit them by hand or export them
// from Grafana. This package's tests keep them honest: they check the
// structure Grafana and the provisioning rely on, parse every query with
// Prometheus's own parser, check every metric name against what slogate
// exports, and run every query against a real `slogate serve` scraped by a
// real Prometheus, so that a renamed metric or a query that matches nothing
// fails the build instead of drawing an empty panel.
package dashboards
