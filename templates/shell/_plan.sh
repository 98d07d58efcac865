# ---- The plan, as data. Every value was shell-quoted by pgbr-policy; nothing below
# ---- this block contains a policy value.
CLUSTER={{ c.name | sh }}
PG_MAJOR={{ c.major }}
PGDATA={{ c.postgres.data_directory | sh }}
PG_OWNER={{ c.postgres.owner | sh }}
PG_GROUP={{ c.postgres.group | sh }}
PG_SOCKET={{ c.postgres.socket_directory | sh }}
PG_PORT={{ c.postgres.port }}
PG_BIN={{ c.postgres.bin_directory | sh }}
PG_SERVICE={{ c.postgres.service | sh }}
HBA_FILE={{ c.postgres.hba_file | sh }}     # empty: asked from the server (SHOW hba_file)
IDENT_FILE={{ c.postgres.ident_file | sh }}
HAS_IDENT_VIEW={% if c.postgres.has_ident_mappings_view %}1{% else %}0{% endif %}
SEARCH_PATHS=({% for p in c.search_paths %} {{ p | sh }}{% endfor %} )
BACKUP_USER={{ c.backup_user.name | sh }}
BACKUP_GROUP={{ c.backup_user.group | sh }}
BACKUP_HOME={{ c.backup_user.home | sh }}
BACKUP_SHELL={{ c.backup_user.shell | sh }}
BACKUP_SSH_KEY={% if c.backup_user.ssh_key %}1{% else %}0{% endif %}
ROLE_NAME={{ c.role.name | sh }}
ROLE_DB={{ c.role.database | sh }}
ROLE_AUTH={{ c.role.auth | sh }}
PASSWORD_FILE={{ c.role.password_file | sh }}
PASSWORD_ENV={{ c.role.password_env | sh }}
PGBACKREST={{ c.pgbackrest_binary | sh }}
PGBACKREST_VERSION={{ c.pgbackrest_version | sh }}   # the policy's; empty: not given
PGBACKREST_MIN={{ c.pgbackrest_min | sh }}   # the oldest that serves PostgreSQL {{ c.major }} here
STANZA={{ c.stanza | sh }}
REPOSITORY={{ c.repository | sh }}
REPO_CONF={{ c.repository_config.path | sh }}
DB_CONF={{ c.database_config.path | sh }}
# The repository's encryption (empty: not encrypted): the root-only passphrase file the
# policy names, and where apply.sh writes it for pgBackRest (--config-include-path).
CIPHER_PASSPHRASE_FILE={% if c.cipher %}{{ c.cipher.passphrase_file | sh }}{% else %}''{% endif %}
CIPHER_INCLUDE_DIR={% if c.cipher %}{{ c.cipher.include_path | sh }}{% else %}''{% endif %}
CIPHER_SECRET={% if c.cipher %}{{ c.cipher.secret_file | sh }}{% else %}''{% endif %}
TLS_DIR={{ c.tls.directory | sh }}
TLS_ADDRESS={{ c.tls.address | sh }}
TLS_HOST={{ c.tls.connect_host | sh }}
TLS_PORT={{ c.tls.port }}
TLS_CA_CERT={{ c.tls.ca_cert | sh }}
TLS_CA_KEY={{ c.tls.ca_key | sh }}
TLS_SERVER_CERT={{ c.tls.server_cert | sh }}
TLS_SERVER_KEY={{ c.tls.server_key | sh }}
TLS_CLIENT_CERT={{ c.tls.client_cert | sh }}
TLS_CLIENT_KEY={{ c.tls.client_key | sh }}
TLS_SERVER_CN={{ c.tls.server_cn | sh }}
TLS_SERVER_SAN={{ c.tls.server_san | sh }}
TLS_CLIENT_CN={{ c.tls.client_cn | sh }}
UNIT_NAME={{ c.systemd.unit_name | sh }}
UNIT_PATH={{ c.systemd.unit_path | sh }}
TMPFILES_PATH={{ c.systemd.tmpfiles_path | sh }}
HBA_MARKER={{ c.hba_marker | sh }}
# Scheduled jobs (policy schedule:): their timers, and the cron.d fallback.
SCHEDULE_TIMERS=({% for j in c.schedule.jobs %} {{ j.timer_name | sh }}{% endfor %} )
SCHEDULE_RETIRED=({% for u in c.schedule.retired_units %} {{ u | sh }}{% endfor %} )
SCHEDULE_CRON={{ c.schedule.cron_file | sh }}
SCHEDULE_CRON_TARGET={{ c.schedule.cron_target | sh }}
ARCHIVE_MANAGED={% if c.archive.managed %}1{% else %}0{% endif %}
ARCHIVE_COMMAND={{ c.archive.command | sh }}
{% if c.host %}# The host this plan is for: HOST_ROLE is repository (the repository host) or database
# (a database host) of a repository-host cluster; see the cluster's CHANGE.md for the
# order of steps across hosts.
HOST_ROLE={{ c.host_role | sh }}
HOST_NAME={{ c.host.name | sh }}
RESTORE_COMMAND={{ c.archive.restore_command | sh }}
# This host's keys and certificate requests (made here; the site CA signs with ca/sign.sh):
# kind key cert csr cn owner group.
TLS_PAIRS=(
{% for t in c.topology.certificates %}{% if t.host == c.host.name %}  {{ t.kind | sh }} {{ t.key | sh }} {{ t.cert | sh }} {{ t.csr | sh }} {{ t.cn | sh }} {{ t.owner | sh }} {{ t.group | sh }}
{% endif %}{% endfor %})
{% endif %}# The state directory (root's alone): what apply.sh remembers for rollback.sh.
STATE_DIR={{ c.state.directory | sh }}
STATE_PGDATA_MODE_BEFORE={{ c.state.pgdata_mode_before | sh }}
STATE_SEARCH_ADDED={{ c.state.search_added | sh }}
STATE_CREATED_USER={{ c.state.created_user | sh }}
STATE_HBA_ORIG={{ c.state.hba_orig | sh }}
STATE_IDENT_ORIG={{ c.state.ident_orig | sh }}
STATE_HBA_BEFORE={{ c.state.hba_before | sh }}
STATE_IDENT_BEFORE={{ c.state.ident_before | sh }}
STATE_ARCHIVE_BEFORE={{ c.state.archive_before | sh }}
STATE_PATRONI_ARCHIVE_BEFORE={{ c.state.patroni_archive_before | sh }}
STATE_TLS_SERVER_PID={{ c.state.tls_server_pid | sh }}
STATE_TLS_SERVER_INFO={{ c.state.tls_server_info | sh }}
STATE_TLS_SERVER_LOG={{ c.state.tls_server_log | sh }}
STATE_RESTART_LOG={{ c.state.restart_log | sh }}
{% if c.s3 %}# The repository is a bucket: no TLS server; each side's key in its include directory.
S3_BUCKET={{ c.s3.bucket | sh }}
S3_DB_KEY_SOURCE={{ c.s3.database_key_source | sh }}
S3_DB_KEY_DIR={{ c.s3.database_key_dir | sh }}
S3_DB_KEY_FILE={{ c.s3.database_key_file | sh }}
S3_BACKUP_KEY_SOURCE={{ c.s3.backup_key_source | sh }}
S3_BACKUP_KEY_DIR={{ c.s3.backup_key_dir | sh }}
S3_BACKUP_KEY_FILE={{ c.s3.backup_key_file | sh }}
S3_PROBE={{ c.s3.probe | sh }}
{% endif %}{% include "shell/_plan_datadir.sh" %}{% if c.patroni %}# Patroni manages this cluster: it owns pg_hba.conf, pg_ident.conf, the archive settings
# (dynamic configuration) and restarts.
PATRONI_CONFIG={{ c.patroni.config_file | sh }}
PATRONI_SCRIPTS={{ c.patroni.scripts_directory | sh }}
PATRONI_HOOK={{ c.patroni.hook | sh }}
PATRONI_POST_BOOTSTRAP={{ c.patroni.post_bootstrap | sh }}
PATRONI_SERVICE={{ c.patroni.service | sh }}
PATRONI_UMASK_DROPIN={{ c.patroni.umask_dropin | sh }}
SRC_PATRONI_DYNAMIC_CONFIG={{ c.patroni.files.dynamic_config | sh }}
SRC_PATRONI_FRAGMENT={{ c.patroni.files.fragment | sh }}
PATRONI_CALLBACKS=({% for cb in c.patroni.callbacks %} {{ cb | sh }}{% endfor %} )
{% endif %}
# Generated files installed on the host: step source target owner group mode.
INSTALLED_FILES=(
{% for f in c.installed_files %}  {{ f.step | sh }} {{ f.source | sh }} {{ f.target | sh }} {{ f.owner | sh }} {{ f.group | sh }} {{ f.mode }}
{% endfor %})
# Every managed path: kind path owner group mode (see CHANGE.md for the reasons).
MANAGED_PATHS=(
{% for p in c.paths %}  {{ p.kind | sh }} {{ p.path | sh }} {{ p.owner | sh }} {{ p.group | sh }} {{ p.mode }}
{% endfor %})
# What the TLS server may see without systemd (shell/lib/tls_server.sh), as the unit's
# sandbox: kind path required, parents first. Kinds: hidden (an empty directory only
# root may enter), empty (an empty read-only directory for the paths mounted below it),
# private (an empty /tmp of its own), read-write and read-only (the host path again).
TLS_SANDBOX=(
{% for m in c.systemd.sandbox.mounts %}  {{ m.kind | sh }} {{ m.path | sh }} {% if m.required %}1{% else %}0{% endif %}
{% endfor %})
