/**
 * Test TLS material made with openssl: a CA, a server certificate for
 * 127.0.0.1 and a client certificate, in the file names the docker CLI uses
 * (`ca.pem`, `cert.pem`, `key.pem`; the server's `server-cert.pem`,
 * `server-key.pem`).
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** Write a CA (`ca.pem`, `ca-key.pem`) and a certificate signed by it for `name` (`<prefix>cert.pem`, `<prefix>key.pem`). */
function signed(dir: string, prefix: string, subject: string, ext: string): void {
  writeFileSync(join(dir, `${prefix}ext.cnf`), ext);
  openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${prefix}key.pem`, "-out", `${prefix}csr.pem`, "-subj", subject]);
  openssl(dir, [
    "x509", "-req", "-in", `${prefix}csr.pem`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
    "-out", `${prefix}cert.pem`, "-days", "2", "-extfile", `${prefix}ext.cnf`,
  ]);
}

/** A fresh CA in `dir` with a server certificate (SAN 127.0.0.1) and a client certificate signed by it. */
export function makeCerts(dir: string): void {
  openssl(dir, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=berth test CA"]);
  signed(dir, "server-", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  signed(dir, "", "/CN=berth test client", "extendedKeyUsage=clientAuth\n");
}
