// Reading recorded workflow histories: the committed replay files and live ones from the server.
import type { temporal } from '@temporalio/proto';

/** Every payload's bytes in a history, decoded as text, for scanning. */
export function payloadTexts(history: temporal.api.history.v1.IHistory): string[] {
  const texts: string[] = [];
  const walk = (value: unknown) => {
    if (value instanceof Uint8Array) texts.push(Buffer.from(value).toString('utf8'));
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
    else if (typeof value === 'string') texts.push(value);
  };
  walk(history);
  return texts;
}

/** The secrets (values only) that must never appear in any history. */
export function leakedSecrets(
  history: temporal.api.history.v1.IHistory,
  secrets: Record<string, string>,
): string[] {
  const texts = payloadTexts(history).join('\n');
  return Object.entries(secrets)
    .filter(([, value]) => value.length >= 6)
    .flatMap(([name, value]) => {
      // An age identity is long; scan its distinctive body too.
      const needles = [value, value.replace(/^AGE-SECRET-KEY-1/, '')].filter((n) => n.length >= 6);
      return needles.some((n) => texts.includes(n)) ? [name] : [];
    });
}
