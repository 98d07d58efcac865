#!/usr/bin/env bash
# shellcheck shell=bash
#
# safety.sh - apply.sh fails safe: invalid pg_hba, failed validation, SIGKILL at every step.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

scenario_safety() {
  result FAIL not-implemented 0 "scenario safety is not written yet"
}
