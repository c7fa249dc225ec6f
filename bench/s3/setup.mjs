// Creates the bench bucket (if missing) and preloads <count> objects of <size> bytes named
// <prefix>-NNNNNN, through plain signed S3 requests (the AWS SDK), 8 at a time.
//   node setup.mjs <endpoint> <access> <secret> <region> <bucket> <prefix> <count> <size>
import { S3Client, CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';

const [endpoint, access, secret, region, bucket, prefix, countRaw, sizeRaw] = process.argv.slice(2);
process.removeAllListeners('warning');
const s3 = new S3Client({
  endpoint,
  region,
  forcePathStyle: true,
  credentials: { accessKeyId: access, secretAccessKey: secret },
  requestChecksumCalculation: 'WHEN_REQUIRED',
});
try {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
} catch (err) {
  if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
}
const count = Number(countRaw ?? 0);
const body = Buffer.alloc(Number(sizeRaw ?? 0), 'x');
let next = 0;
await Promise.all(
  Array.from({ length: 8 }, async () => {
    while (next < count) {
      const i = next++;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}-${String(i).padStart(6, '0')}`, Body: body }));
    }
  }),
);
