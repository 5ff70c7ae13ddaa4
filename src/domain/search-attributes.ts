// Lifeboat's custom search attributes: registered by the local stack (and, on a real cluster, by
// the operator: see README) and set by every workflow so the Web UI can filter runs.
export const SEARCH_ATTRIBUTES = {
  LifeboatKind: 'Keyword',
  LifeboatDatabase: 'Keyword',
  LifeboatRegion: 'Keyword',
  LifeboatTargetRegion: 'Keyword',
  LifeboatOutcome: 'Keyword',
  LifeboatRequestedBy: 'Keyword',
} as const;
export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;
