// Presigned S3 URLs (SigV4, query string, UNSIGNED-PAYLOAD) for the wrk runs, written one
// path+query per line. Signed here with node:crypto rather than the AWS SDK's presigner, which
// needs ~10 ms per URL on this machine; the signature is the standard one, both servers check it.
//   node presign.mjs <endpoint> <access> <secret> <region> <bucket> <GET|PUT> <prefix> <count> <out>
import { createHash, createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [endpoint, access, secret, region, bucket, method, prefix, countRaw, out] = process.argv.slice(2);
if (!out) {
  process.stderr.write('usage: presign.mjs endpoint access secret region bucket GET|PUT prefix count out\n');
  process.exit(2);
}
const host = new URL(endpoint).host;
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const now = new Date();
const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
const day = amzDate.slice(0, 8);
const scope = `${day}/${region}/s3/aws4_request`;
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');

export function presign(key) {
  const path = `/${enc(bucket)}/${key.split('/').map(enc).join('/')}`;
  const q = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${access}/${scope}`],
    ['X-Amz-Date', amzDate],
    ['X-Amz-Expires', '3600'],
    ['X-Amz-SignedHeaders', 'host'],
  ]
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .sort()
    .join('&');
  const canonical = `${method}\n${path}\n${q}\nhost:${host}\n\nhost\nUNSIGNED-PAYLOAD`;
  const sts = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
  return `${path}?${q}&X-Amz-Signature=${createHmac('sha256', signingKey).update(sts).digest('hex')}`;
}

const count = Number(countRaw);
const lines = [];
for (let i = 0; i < count; i++) lines.push(presign(`${prefix}-${String(i).padStart(6, '0')}`));
writeFileSync(out, lines.join('\n') + '\n');
