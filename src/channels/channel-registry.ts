/**
 * The channels this server can deliver through, by channel code. Base codes are the R4 channel types
 * (`rest-hook`, `websocket`, `email`, `message`); a custom channel (a backport-channel-type Coding on
 * `channel.type`, e.g. `http://example.org/subscription-channel-type#zulip`) is registered under its
 * Coding, so that Subscription validation can tell "unknown custom channel" (SHALL reject) apart from a
 * base type. The server registers rest-hook, message and (with SMTP configured) email.
 */
import type { Channel } from './channel.js';

export interface CustomChannelCode {
  system?: string;
  code: string;
}

/** The registry key of a custom channel Coding: `system|code`, or `code` when it has no system. */
export function customChannelKey(c: CustomChannelCode): string {
  return c.system ? `${c.system}|${c.code}` : c.code;
}

export class ChannelRegistry {
  private readonly base = new Map<string, Channel>();
  private readonly custom = new Map<string, Channel>();

  /**
   * Registers a channel under its `type` (a base channel code), or, with `custom`, under a
   * backport-channel-type Coding. Replaces a channel registered under the same code.
   */
  register(channel: Channel, custom?: CustomChannelCode): void {
    if (custom) this.custom.set(customChannelKey(custom), channel);
    else this.base.set(channel.type, channel);
  }

  /** The channel for a base channel code (`rest-hook`), if registered. */
  get(type: string): Channel | undefined {
    return this.base.get(type);
  }

  /**
   * The channel a subscription asks for: its custom channel when it names one (matched by
   * `system|code`, or by code alone when the registration has no system), otherwise its base type.
   */
  resolve(type: string, custom?: CustomChannelCode): Channel | undefined {
    if (!custom) return this.base.get(type);
    return this.custom.get(customChannelKey(custom)) ?? this.custom.get(custom.code);
  }

  /** Registered base codes and custom keys, for "accepted: …" messages. */
  describe(): string[] {
    return [...this.base.keys(), ...[...this.custom.keys()].map((k) => `custom ${k}`)].sort();
  }

  /** Closes every registered channel (each once). */
  async close(): Promise<void> {
    const all = new Set([...this.base.values(), ...this.custom.values()]);
    await Promise.all([...all].map((c) => c.close()));
  }
}
