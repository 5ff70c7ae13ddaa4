// The process base-backup-task.ts starts to check the base backup's tar (tar-check.ts):
//
//   node tar-check-main.ts --algorithm <CRC32C|SHA…> --name <object key> [--input <path>]
//
// The tar comes on stdin, or from --input (a FIFO the tar is teed into). stdout: one JSON line,
// the TarCheckReport; stderr: `tar-bytes <n>` progress lines. Exit 0 with a report, 2 on bad
// arguments.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { isFileChecksumAlgorithm } from './file-checksum.ts';
import { checkTar } from './tar-check.ts';

const { values } = parseArgs({
  options: { algorithm: { type: 'string' }, name: { type: 'string' }, input: { type: 'string' } },
});
if (!isFileChecksumAlgorithm(values.algorithm) || !values.name) {
  process.stderr.write('tar-check: expected --algorithm <CRC32C|SHA224|SHA256|SHA384|SHA512> --name <key>\n');
  process.exit(2);
}
const fd = values.input ? fs.openSync(values.input, 'r') : 0;
const report = checkTar(fd, {
  algorithm: values.algorithm,
  name: values.name,
  progress: (bytes) => fs.writeSync(2, `tar-bytes ${bytes}\n`),
});
fs.writeSync(1, `${JSON.stringify(report)}\n`);
