# ---- TLS material for pgBackRest's TLS server, made on this host by openssl: no key ever
# ---- leaves it or enters the artifact tree. Root works in the TLS directory, which is
# ---- root's alone (checked before anything is written); the certificate requests are
# ---- made there too, never in /tmp.

ensure_owner_mode() {  # path owner group mode
  local drift
  [ ! -L "$1" ] || die "$1 is a symbolic link: refused"
  drift=$(path_drift "$@")
  case "$drift" in *owner*|*group*) change chown -- "$2:$3" "$1" ;; esac
  case "$drift" in *mode*) change chmod -- "$4" "$1" ;; esac
}

# A key+certificate pair signed by the CA, unless a valid one for this CN is there and
# lasts 30 more days. New files are made under temporary names and renamed into place.
issue_cert() {  # key cert cn san owner group
  local key=$1 cert=$2 cn=$3 san=$4 owner=$5 group=$6 csr
  if [ -f "$key" ] && [ ! -L "$key" ] && [ -s "$cert" ] && [ ! -L "$cert" ] \
     && openssl verify -CAfile "$TLS_CA_CERT" "$cert" >/dev/null 2>&1 \
     && openssl x509 -in "$cert" -noout -subject -nameopt RFC2253 | grep -qxF "subject=CN=$cn" \
     && openssl x509 -in "$cert" -noout -checkend 2592000 >/dev/null; then
    ensure_owner_mode "$key" "$owner" "$group" 0600
    ensure_owner_mode "$cert" "$owner" "$group" 0644
    return
  fi
  if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would issue $cert (CN=$cn)"; return; fi
  csr="$TLS_DIR/.pgbr-request.csr"
  rm -f -- "$key.new" "$cert.new" "$csr"
  (umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$key.new" -out "$csr" -subj "/CN=$cn" 2>/dev/null)
  (umask 077; openssl x509 -req -in "$csr" -CA "$TLS_CA_CERT" -CAkey "$TLS_CA_KEY" -set_serial "0x$(openssl rand -hex 16)" -days 825 \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") -out "$cert.new" 2>/dev/null)
  rm -f -- "$csr"
  chown -- "$owner:$group" "$key.new" "$cert.new"; chmod 0600 -- "$key.new"; chmod 0644 -- "$cert.new"
  mv -f -- "$key.new" "$key"; mv -f -- "$cert.new" "$cert"
  CHANGES=$((CHANGES + 1)); say "issued $cert (CN=$cn)"
  TLS_CHANGED=1
}
TLS_CHANGED=0

# The CA (root's), then the server pair (the backup user's) and the client pair (the
# cluster owner's). The server certificate names TLS_SERVER_CN; its subjectAltName
# (TLS_SERVER_SAN, from the plan) names the listening address too when it is an IP
# (honoured by pgBackRest from 2.53, which then connects to that address).
tls_material() {
  if [ "$DRY_RUN" = 1 ] && [ ! -d "$TLS_DIR" ]; then
    CHANGES=$((CHANGES + 1)); say "would create the CA in $TLS_DIR and issue the server and client certificates"; return
  fi
  root_acts_in "$TLS_DIR" "make TLS keys"
  if [ ! -s "$TLS_CA_KEY" ] || [ ! -s "$TLS_CA_CERT" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      CHANGES=$((CHANGES + 1)); say "would create the CA in $TLS_DIR and issue the server and client certificates"; return
    fi
    rm -f -- "$TLS_CA_KEY" "$TLS_CA_CERT"
    (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -keyout "$TLS_CA_KEY" -out "$TLS_CA_CERT" -subj "/CN=pgbr-policy CA $CLUSTER" 2>/dev/null)
    chmod 0644 -- "$TLS_CA_CERT"
    CHANGES=$((CHANGES + 1)); say "created the CA $TLS_CA_CERT"
  fi
  ensure_owner_mode "$TLS_CA_KEY" root root 0600
  ensure_owner_mode "$TLS_CA_CERT" root root 0644
  issue_cert "$TLS_SERVER_KEY" "$TLS_SERVER_CERT" "$TLS_SERVER_CN" "$TLS_SERVER_SAN" "$BACKUP_USER" "$BACKUP_GROUP"
  issue_cert "$TLS_CLIENT_KEY" "$TLS_CLIENT_CERT" "$TLS_CLIENT_CN" "DNS:$TLS_CLIENT_CN" "$PG_OWNER" "$PG_GROUP"
}
