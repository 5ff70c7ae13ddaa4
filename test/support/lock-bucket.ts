// Buckets with S3 Object Lock that tests create on the stack's SeaweedFS: every version, legal
// hold and delete marker must go (GOVERNANCE retention bypassed) before the bucket can.
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectVersionsCommand,
  PutObjectLegalHoldCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

export async function deleteLockedBucket(s3: S3Client, bucket: string): Promise<void> {
  let versions;
  do {
    versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    for (const v of [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]) {
      await s3
        .send(
          new PutObjectLegalHoldCommand({
            Bucket: bucket,
            Key: v.Key,
            VersionId: v.VersionId,
            LegalHold: { Status: 'OFF' },
          }),
        )
        .catch(() => undefined);
      await s3.send(
        new DeleteObjectCommand({
          Bucket: bucket,
          Key: v.Key,
          VersionId: v.VersionId,
          BypassGovernanceRetention: true,
        }),
      );
    }
  } while (versions.IsTruncated);
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}
