#!/usr/bin/env bash
# Starts a real OpenLDAP slapd for the directory tests, on loopback, in its own folder; installs
# nothing (scripts/test.sh installs the Debian packages slapd and ldap-utils).
#
# Usage: scripts/slapd.sh DIR LDAP_PORT LDAPS_PORT
#
# In DIR it makes a CA (ca.crt: the CA file that trusts the server; other-ca.crt: one that does
# not), the server's certificate for 127.0.0.1 (an IP SAN: clients check the address), the
# configuration (cn=config: mdb, the memberof overlay, TLS, access rules, a size limit of 100
# entries that only paged searches may pass, as Active Directory's 1000) and the tree:
#
#   dc=example,dc=org
#     cn=admin            the root DN, password in DIR/admin.pw
#     ou=services         cn=tessera: the account Tessera binds as, password in DIR/bind.pw
#     ou=people           uid=seed: one person, with a jpegPhoto (DIR/seed.jpg, when given)
#     ou=groups           cn=everyone (groupOfNames, member: uid=seed)
#
# slapd listens on ldap://127.0.0.1:LDAP_PORT (StartTLS offered) and ldaps://127.0.0.1:LDAPS_PORT,
# logs to DIR/slapd.log, and its pid is in DIR/slapd.pid once this script returns (it returns
# when slapd answers). Stop it with: kill "$(cat DIR/slapd.pid)".
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "usage: $0 DIR LDAP_PORT LDAPS_PORT" >&2
  exit 2
fi
D=$(realpath -m "$1")
P=$2
PS=$3
SUFFIX=dc=example,dc=org
PATH=$PATH:/usr/sbin
for tool in slapd slapadd slappasswd ldapsearch openssl; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed (Debian: slapd ldap-utils openssl)" >&2; exit 3; }
done
mkdir -p "$D/db" "$D/slapd.d"

# --- certificates -------------------------------------------------------------------------------
cd "$D"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=Directory Test CA" -keyout ca.key -out ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=Some Other CA" -keyout other-ca.key -out other-ca.crt \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt 2>/dev/null
chmod 600 ca.key other-ca.key server.key

# --- passwords ------------------------------------------------------------------------------------
openssl rand -hex 12 | tr -d "\n" > admin.pw
openssl rand -hex 12 | tr -d "\n" > bind.pw
chmod 600 admin.pw bind.pw
ADMIN_HASH=$(slappasswd -s "$(cat admin.pw)")
BIND_HASH=$(slappasswd -s "$(cat bind.pw)")

# --- configuration --------------------------------------------------------------------------------
cat > config.ldif <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $D/slapd.pid
olcTLSCACertificateFile: $D/ca.crt
olcTLSCertificateFile: $D/server.crt
olcTLSCertificateKeyFile: $D/server.key

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: size.soft=100 size.hard=100 size.prtotal=unlimited

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcRootDN: cn=admin,$SUFFIX
olcRootPW: $ADMIN_HASH
olcDbDirectory: $D/db
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcSizeLimit: size.soft=100 size.hard=100 size.prtotal=unlimited
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by * read

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
EOF
slapadd -n0 -F "$D/slapd.d" -l config.ldif

# --- the tree ---------------------------------------------------------------------------------------
PHOTO=
if [ -f "$D/seed.jpg" ]; then
  PHOTO="jpegPhoto:< file://$D/seed.jpg"
fi
cat > data.ldif <<EOF
dn: $SUFFIX
objectClass: dcObject
objectClass: organization
dc: example
o: Example Org

dn: ou=services,$SUFFIX
objectClass: organizationalUnit
ou: services

dn: cn=tessera,ou=services,$SUFFIX
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: tessera
userPassword: $BIND_HASH

dn: ou=people,$SUFFIX
objectClass: organizationalUnit
ou: people

dn: ou=groups,$SUFFIX
objectClass: organizationalUnit
ou: groups

dn: uid=seed,ou=people,$SUFFIX
objectClass: inetOrgPerson
uid: seed
cn: Sam Seed
givenName: Sam
sn: Seed
mail: seed@example.org
$PHOTO

dn: cn=everyone,ou=groups,$SUFFIX
objectClass: groupOfNames
cn: everyone
member: uid=seed,ou=people,$SUFFIX
EOF
slapadd -F "$D/slapd.d" -b "$SUFFIX" -l data.ldif

# --- start, and wait until it answers ---------------------------------------------------------------
slapd -F "$D/slapd.d" -h "ldap://127.0.0.1:$P/ ldaps://127.0.0.1:$PS/" -d 0 </dev/null >"$D/slapd.log" 2>&1 &
for _ in $(seq 1 100); do
  if ldapsearch -x -LLL -H "ldap://127.0.0.1:$P" -D "cn=admin,$SUFFIX" -y admin.pw \
      -b "$SUFFIX" -s base dn >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.1
done
echo "$0: slapd did not answer on 127.0.0.1:$P; its log:" >&2
cat "$D/slapd.log" >&2
exit 1
