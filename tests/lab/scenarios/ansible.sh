#!/usr/bin/env bash
# shellcheck shell=bash
#
# ansible.sh - the generated Ansible role applied with ansible-playbook.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

scenario_ansible() {
  result FAIL not-implemented 0 "scenario ansible is not written yet"
}
