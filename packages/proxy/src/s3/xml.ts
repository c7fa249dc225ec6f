/**
 * S3's XML: a small escaping builder for the documents the gateway writes, and fast-xml-parser for
 * the few it reads (CreateBucketConfiguration, Delete). Element order follows object insertion
 * order; an array value repeats its element; `@name` keys are attributes.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export type XmlScalar = string | number | boolean | bigint;
export type XmlValue = XmlScalar | XmlNode | undefined | null;
export interface XmlNode {
  [name: string]: XmlValue | XmlValue[];
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text and attribute values; characters XML 1.0 cannot carry at all become &#xN; references. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']|[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, (c) =>
    ESCAPES[c] ?? `&#x${c.charCodeAt(0).toString(16).toUpperCase()};`,
  );
}

function renderElement(name: string, value: XmlValue, out: string[]): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object') {
    out.push(`<${name}>${escapeXml(String(value))}</${name}>`);
    return;
  }
  const attrs: string[] = [];
  const inner: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (k.startsWith('@')) {
      if (v !== undefined && v !== null) attrs.push(` ${k.slice(1)}="${escapeXml(String(v))}"`);
    } else if (k === '#text') {
      if (v !== undefined && v !== null) inner.push(escapeXml(String(v)));
    } else if (Array.isArray(v)) {
      for (const item of v) renderElement(k, item, inner);
    } else {
      renderElement(k, v, inner);
    }
  }
  out.push(inner.length === 0 ? `<${name}${attrs.join('')}></${name}>` : `<${name}${attrs.join('')}>${inner.join('')}</${name}>`);
}

/** A whole document with its XML declaration; `root` holds exactly one top-level element. */
export function xmlDocument(root: XmlNode): string {
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  for (const [name, value] of Object.entries(root)) {
    if (Array.isArray(value)) throw new TypeError('xmlDocument: the root element cannot repeat');
    renderElement(name, value, out);
  }
  return out.join('');
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  ignoreDeclaration: true,
  // Elements that may repeat are always arrays, so a one-key Delete reads like a 1000-key one.
  isArray: (name) => name === 'Object',
});

/** Parses a request document; anything not well-formed is `undefined` (the caller answers MalformedXML). */
export function parseXml(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  if (XMLValidator.validate(text) !== true) return undefined;
  try {
    const doc = parser.parse(text) as unknown;
    return typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
