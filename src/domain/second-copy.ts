// What a backup workflow reports about its second copy (3-2-1): where it went and what it took,
// or why it is missing. A missing second copy does not undo a whole, verified primary backup;
// it is reported here, in the run's log and by `lifeboat compliance`.
export type SecondCopyReport =
  | {
      location: string;
      /** Objects of the backup on the secondary, its manifest (copied last) included. */
      objects: number;
      copied: number;
      /** Already there and identical (a retried copy). */
      present: number;
      bytes: number;
      copyMs: number;
    }
  | { location: string; error: string };
