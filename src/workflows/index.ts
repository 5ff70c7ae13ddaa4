// The workflow bundle's entry: every Lifeboat workflow, one business process per file.
export { doctorWorkflow } from './doctor.ts';
export { regionalFailoverWorkflow } from './regional-failover.ts';
export { fullBackupWorkflow } from './full-backup.ts';
export { walArchiverWorkflow } from './wal-archiver.ts';
export { pointInTimeRestoreWorkflow } from './point-in-time-restore.ts';
export { discardRestoreWorkflow } from './discard-restore.ts';
export { regionHealthMonitorWorkflow } from './region-health-monitor.ts';
export { incrementalBackupWorkflow } from './incremental-backup.ts';
export { retentionWorkflow } from './retention.ts';
export { scheduledBackupWorkflow } from './scheduled-backup.ts';
export { drDrillWorkflow } from './dr-drill.ts';
