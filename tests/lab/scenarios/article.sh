#!/usr/bin/env bash
# shellcheck shell=bash
#
# article.sh - the article's literal repository layout on PostgreSQL 15 + pgBackRest
# 2.45: one local repository, archive/ written by the cluster owner (archive-push),
# backup/ handed to the backup user (chown -R, group setgid as the article does). The
# backup user's backup must fail as facts.md §3 says, which is why the generated layout
# gives the whole repository to the backup user behind a TLS server.
# Needs: SCENARIO LAB RESULTS LOG PGBR ROOT (set by tests/lab/run).

scenario_article() {
  local D="$LAB/$SCENARIO" bin owner=pgbrlabao bkp=pgbrlabab port=55480
  bin=$(pgbin_dir 15 2>>"$LOG") || { result FAIL binaries 0 "pgbin_dir 15 failed"; return; }
  install -d -m 0755 "$D"
  lab_user "$owner"
  lab_user "$bkp" -G "$owner"
  install -d -o "$owner" -g "$owner" -m 0750 "$D/pg" "$D/sock"
  chmod 0755 "$D/sock"
  step initdb runuser -u "$owner" -- "$bin/initdb" -D "$D/pg/data" -A peer -U "$owner" --allow-group-access --no-sync || return
  # The role is named like the backup OS user so that libpq's default user and peer
  # authentication work without a map, as in the article's single config file.
  printf 'local postgres %s peer\nlocal all %s reject\n' "$bkp" "$bkp" | cat - "$D/pg/data/pg_hba.conf" > "$D/hba" && cat "$D/hba" > "$D/pg/data/pg_hba.conf"
  step start pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  local q=(psql_as "$owner" "$D/sock" "$port")
  step grants "${q[@]}" postgres -c "CREATE ROLE $bkp LOGIN" -c "GRANT pg_read_all_settings TO $bkp" \
    -c "GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean), pg_backup_stop(boolean), pg_switch_wal(), pg_create_restore_point(text) TO $bkp" || return
  # The article's repository: owned by the cluster owner, group rwxs.
  install -d -o "$owner" -g "$owner" -m 2770 "$D/repo"
  install -d -o "$owner" -g "$owner" -m 2770 "$D/lock-owner" "$D/log"
  install -d -o "$bkp" -g "$owner" -m 0750 "$D/lock-bkp"
  cat > "$D/article.conf" <<CONF
[global]
repo1-path=$D/repo
log-path=$D/log
start-fast=y
[article]
pg1-path=$D/pg/data
pg1-socket-path=$D/sock
pg1-port=$port
CONF
  chmod 0644 "$D/article.conf"
  local o=(runuser -u "$owner" -- pgbackrest --config="$D/article.conf" --stanza=article --lock-path="$D/lock-owner" --log-level-console=warn)
  step article-stanza-create "${o[@]}" stanza-create || return
  step article-archive-command "${q[@]}" postgres -c "ALTER SYSTEM SET archive_mode = on" \
    -c "ALTER SYSTEM SET archive_command = 'pgbackrest --config=$D/article.conf --stanza=article --lock-path=$D/lock-owner archive-push %p'" || return
  pg_stop "$owner" "$bin" "$D/pg/data"
  step restart pg_start "$owner" "$bin" "$D/pg/data" "$port" "$D/sock" || return
  # "Make pgbackrest the owner of the backups directory" (the article).
  chown -R "$bkp" "$D/repo/backup"
  local b=(runuser -u "$bkp" -- pgbackrest --config="$D/article.conf" --stanza=article --lock-path="$D/lock-bkp" --log-level-console=warn)
  denied article-layout-backup-fails "\[041\].*archive\.info' for write|\[047\]: unable to create path" "${b[@]}" --type=full backup
  runuser -u "$owner" -- "$bin/pg_ctl" -D "$D/pg/data" -m immediate stop >/dev/null 2>&1 || true
}
