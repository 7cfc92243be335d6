#!/bin/sh
# Regenerates the TEST-ONLY mTLS material of MutualTlsTest with the JDK's keytool (private keys are public here:
# never use them for anything else). cluster-ca signs cluster-node (127.0.0.1 / localhost); rogue-node is
# self-signed for the same address. Valid from 2000-01-01 for 40000 days (any machine clock works). Run in this directory.
set -e
P="-storetype PKCS12 -storepass changeit -noprompt"
rm -f *.p12 *.csr
keytool -genkeypair -alias ca -keyalg EC -groupname secp256r1 -dname CN=cluster-ca -ext bc:c -startdate 2000/01/01 -validity 40000 -keystore ca.p12 $P
keytool -genkeypair -alias node -keyalg EC -groupname secp256r1 -dname CN=node -startdate 2000/01/01 -validity 40000 -keystore node.p12 $P
keytool -certreq -alias node -keystore node.p12 -file node.csr $P
keytool -gencert -rfc -alias ca -keystore ca.p12 -infile node.csr -outfile cluster-node.pem \
        -ext san=ip:127.0.0.1,dns:localhost -ext eku=serverAuth,clientAuth -startdate 2000/01/01 -validity 40000 $P
keytool -exportcert -rfc -alias ca -keystore ca.p12 -file cluster-ca.pem $P
keytool -genkeypair -alias node -keyalg EC -groupname secp256r1 -dname CN=rogue -ext san=ip:127.0.0.1,dns:localhost \
        -startdate 2000/01/01 -validity 40000 -keystore rogue.p12 $P
keytool -exportcert -rfc -alias node -keystore rogue.p12 -file rogue-node.pem $P
# private keys as PKCS#8 PEM (keytool cannot export them; openssl is not assumed)
for pair in node:cluster-node rogue:rogue-node; do
  store=${pair%%:*}; out=${pair##*:}
  cat > /tmp/ExportKey.java <<'JAVA'
import java.io.FileInputStream; import java.security.KeyStore; import java.util.Base64;
public class ExportKey { public static void main(String[] a) throws Exception {
  KeyStore ks = KeyStore.getInstance("PKCS12"); ks.load(new FileInputStream(a[0]), "changeit".toCharArray());
  byte[] der = ks.getKey("node", "changeit".toCharArray()).getEncoded();
  System.out.print("-----BEGIN PRIVATE KEY-----\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(der)
      + "\n-----END PRIVATE KEY-----\n"); } }
JAVA
  java /tmp/ExportKey.java $store.p12 > $out.key
done
rm -f *.p12 *.csr /tmp/ExportKey.java
