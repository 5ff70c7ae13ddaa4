// Lifeboat's custom search attributes: registered by the local stack (and, on a real cluster, by
// the operator: see README) and set by every workflow so the Web UI can filter runs.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
export const SEARCH_ATTRIBUTES = {
  LifeboatKind: 'Keyword',
  LifeboatDatabase: 'Keyword',
  LifeboatRegion: 'Keyword',
  LifeboatTargetRegion: 'Keyword',
  LifeboatOutcome: 'Keyword',
  LifeboatRequestedBy: 'Keyword',
} as const;
export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;

/** Typed keys for `upsertSearchAttributes([{ key, value }])` in workflows. */
export const searchAttributeKeys = {
  kind: defineSearchAttributeKey('LifeboatKind', SearchAttributeType.KEYWORD),
  database: defineSearchAttributeKey('LifeboatDatabase', SearchAttributeType.KEYWORD),
  region: defineSearchAttributeKey('LifeboatRegion', SearchAttributeType.KEYWORD),
  targetRegion: defineSearchAttributeKey('LifeboatTargetRegion', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('LifeboatOutcome', SearchAttributeType.KEYWORD),
  requestedBy: defineSearchAttributeKey('LifeboatRequestedBy', SearchAttributeType.KEYWORD),
};
