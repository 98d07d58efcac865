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
{% if c.host %}
# ---- A repository-host cluster (HOST_ROLE repository or database): no CA on this host.
# ---- Each key is made here and never leaves; each certificate is signed by the site CA
# ---- (ca/sign.sh on the CA host, from the request made here) and copied back into TLS_DIR
# ---- by the operator. What waits for the CA is reported as PENDING (apply.sh exits 3).

# The certificate is the CA's, names CN, lasts 30 more days and belongs to the key.
tls_cert_good() {  # cert key cn
  [ -f "$1" ] && [ ! -L "$1" ] && [ -f "$2" ] && [ ! -L "$2" ] && [ -s "$TLS_CA_CERT" ] && [ ! -L "$TLS_CA_CERT" ] \
    && openssl verify -CAfile "$TLS_CA_CERT" "$1" >/dev/null 2>&1 \
    && openssl x509 -in "$1" -noout -subject -nameopt RFC2253 2>/dev/null | grep -qxF "subject=CN=$3" \
    && openssl x509 -in "$1" -noout -checkend 2592000 >/dev/null 2>&1 \
    && [ "$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}

# The request names CN and belongs to the key.
tls_csr_good() {  # csr key cn
  [ -f "$1" ] && [ ! -L "$1" ] \
    && openssl req -in "$1" -noout -subject -nameopt RFC2253 2>/dev/null | grep -qxF "subject=CN=$3" \
    && [ "$(openssl req -in "$1" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$2" -pubout 2>/dev/null)" ]
}

# One pair of TLS_PAIRS: its key (made here once), then either its certificate (checked,
# given to the key's owner) or a request for the CA.
tls_signed_pair() {  # kind key cert csr cn owner group
  local kind=$1 key=$2 cert=$3 csr=$4 cn=$5 owner=$6 group=$7
  if [ -L "$key" ] || [ -L "$cert" ] || [ -L "$csr" ]; then die "$key, $cert or $csr is a symbolic link: refused"; fi
  if [ ! -f "$key" ]; then
    if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would make the key $key and the request $csr (CN=$cn)"; return; fi
    rm -f -- "$key.new"
    (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$key.new" 2>/dev/null)
    chown -- "$owner:$group" "$key.new"; chmod 0600 -- "$key.new"; mv -f -- "$key.new" "$key"
    CHANGES=$((CHANGES + 1)); say "made the key $key ($owner, 0600; it never leaves this host)"
  fi
  ensure_owner_mode "$key" "$owner" "$group" 0600
  if tls_cert_good "$cert" "$key" "$cn"; then
    ensure_owner_mode "$cert" "$owner" "$group" 0644
    if [ -e "$csr" ]; then
      change rm -f -- "$csr"
      say "$cert (CN=$cn) is signed by the site CA and matches its key"
      TLS_CHANGED=1
    fi
    return
  fi
  if ! tls_csr_good "$csr" "$key" "$cn"; then
    if [ "$DRY_RUN" = 1 ]; then CHANGES=$((CHANGES + 1)); say "would make the request $csr (CN=$cn)"; else
      rm -f -- "$csr.new"
      openssl req -new -key "$key" -subj "/CN=$cn" -out "$csr.new" 2>/dev/null
      chmod 0644 -- "$csr.new"; mv -f -- "$csr.new" "$csr"
      CHANGES=$((CHANGES + 1)); say "made the request $csr (CN=$cn)"
    fi
  fi
  local why="no certificate"
  if [ -f "$cert" ]; then why="$cert is not a valid certificate of the site CA for CN=$cn and this key (or expires within 30 days)"; fi
  [ -s "$TLS_CA_CERT" ] || why="$why; no CA certificate $TLS_CA_CERT"
  pending "$why: on the CA host run ca/sign.sh sign $HOST_NAME $kind <copy of $csr> <out.crt>, then copy out.crt to $cert on $HOST_NAME (and the CA's ca.crt to $TLS_CA_CERT)"
}

tls_signed_material() {
  if [ "$DRY_RUN" = 1 ] && [ ! -d "$TLS_DIR" ]; then
    CHANGES=$((CHANGES + 1)); say "would make this host's keys and certificate requests in $TLS_DIR"; return
  fi
  root_acts_in "$TLS_DIR" "make TLS keys"
  [ ! -L "$TLS_CA_CERT" ] || die "$TLS_CA_CERT is a symbolic link: refused"
  if [ -f "$TLS_CA_CERT" ]; then ensure_owner_mode "$TLS_CA_CERT" root root 0644; fi
  local i
  for ((i = 0; i < ${#TLS_PAIRS[@]}; i += 7)); do
    tls_signed_pair "${TLS_PAIRS[@]:i:7}"
  done
}

# The TLS server's own certificate is in place (it cannot start without it).
tls_server_cert_ready() { tls_cert_good "$TLS_SERVER_CERT" "$TLS_SERVER_KEY" "$TLS_SERVER_CN"; }
{% endif %}