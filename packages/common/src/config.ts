/**
 * INI configuration as Swift reads it: `[DEFAULT]` values are inherited by every section, a
 * section's own value wins, and keys use Swift's names. A daemon parses its file once at start-up
 * into a typed, frozen object (see each server's `config.ts`); this module only gives typed access
 * to the raw sections with errors that name the file, section and key.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'ini';
import { ConfigError } from './errors.js';

export const DEFAULT_SWIFT_DIR = '/etc/swiftlet';

export class ConfigSection {
  constructor(
    readonly file: string,
    readonly name: string,
    private readonly values: Readonly<Record<string, string>>,
  ) {}

  has(key: string): boolean {
    return Object.hasOwn(this.values, key);
  }

  keys(): string[] {
    return Object.keys(this.values);
  }

  private where(key: string): string {
    return `${this.file} [${this.name}] ${key}`;
  }

  string(key: string, fallback: string): string {
    return this.has(key) ? (this.values[key] as string) : fallback;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? (this.values[key] as string) : undefined;
  }

  requiredString(key: string): string {
    const v = this.optionalString(key);
    if (v === undefined || v === '') throw new ConfigError(`${this.where(key)} is required`);
    return v;
  }

  number(key: string, fallback: number, opts: { min?: number; max?: number } = {}): number {
    if (!this.has(key)) return fallback;
    const raw = (this.values[key] as string).trim();
    const n = Number(raw);
    if (raw === '' || !Number.isFinite(n)) throw new ConfigError(`${this.where(key)} must be a number (was "${raw}")`);
    if (opts.min !== undefined && n < opts.min) throw new ConfigError(`${this.where(key)} must be >= ${opts.min} (was ${n})`);
    if (opts.max !== undefined && n > opts.max) throw new ConfigError(`${this.where(key)} must be <= ${opts.max} (was ${n})`);
    return n;
  }

  integer(key: string, fallback: number, opts: { min?: number; max?: number } = {}): number {
    const n = this.number(key, fallback, opts);
    if (!Number.isInteger(n)) throw new ConfigError(`${this.where(key)} must be an integer (was ${n})`);
    return n;
  }

  /** Swift's truth values: true, 1, yes, on, t, y (case-insensitive); everything else is false. */
  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const raw = (this.values[key] as string).trim().toLowerCase();
    if (['true', '1', 'yes', 'on', 't', 'y'].includes(raw)) return true;
    if (['false', '0', 'no', 'off', 'f', 'n', ''].includes(raw)) return false;
    throw new ConfigError(`${this.where(key)} must be true or false (was "${raw}")`);
  }

  /** A comma-separated list, entries trimmed, empty entries dropped. */
  list(key: string, fallback: string[]): string[] {
    if (!this.has(key)) return fallback;
    return (this.values[key] as string)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }
}

export class ConfigFile {
  private constructor(
    readonly file: string,
    private readonly sections: Map<string, Record<string, string>>,
  ) {}

  static load(file: string): ConfigFile {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    return ConfigFile.parse(text, file);
  }

  static parse(text: string, file = '<config>'): ConfigFile {
    const raw = parse(text) as Record<string, unknown>;
    const sections = new Map<string, Record<string, string>>();
    const top: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw)) {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const section: Record<string, string> = {};
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) section[k] = String(v);
        sections.set(name, section);
      } else {
        top[name] = String(value);
      }
    }
    // Keys before any section header count as [DEFAULT], as Python's ConfigParser would refuse
    // them; being lenient here costs nothing.
    if (Object.keys(top).length > 0) sections.set('DEFAULT', { ...top, ...(sections.get('DEFAULT') ?? {}) });
    return new ConfigFile(file, sections);
  }

  hasSection(name: string): boolean {
    return this.sections.has(name);
  }

  sectionNames(): string[] {
    return [...this.sections.keys()];
  }

  /** A section with `[DEFAULT]` values inherited; an absent section is just the defaults. */
  section(name: string): ConfigSection {
    const defaults = this.sections.get('DEFAULT') ?? {};
    const own = name === 'DEFAULT' ? {} : (this.sections.get(name) ?? {});
    return new ConfigSection(this.file, name, Object.freeze({ ...defaults, ...own }));
  }
}
