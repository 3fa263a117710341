/**
 * A real SMTP server in the test process (smtp-server on 127.0.0.1, port 0) that parses every message
 * it accepts with mailparser. Tests wait for mail with `until(count)`, never by sleeping; they choose
 * which recipients are refused (550) and whether AUTH is required.
 */
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  /** The SMTP envelope (what the client said in MAIL FROM / RCPT TO). */
  envelope: { from: string; to: string[] };
  /** The authenticated user, if the client logged in. */
  user?: string;
  parsed: ParsedMail;
}

export interface MailServer {
  host: string;
  port: number;
  received: ReceivedMail[];
  /** RCPT TO attempts, accepted or refused (a refused recipient never shows up in `received`). */
  recipientAttempts: string[];
  /** Recipients for which RCPT TO answers 550 (the server refuses them). */
  refuseRecipients(pred: (address: string) => boolean): void;
  /** Resolves when `count` messages in total have been accepted. */
  until(count: number): Promise<ReceivedMail[]>;
  /** Resolves when `count` RCPT TO attempts in total have been made. */
  untilAttempts(count: number): Promise<string[]>;
  close(): Promise<void>;
}

export interface MailServerOptions {
  /** Require AUTH PLAIN/LOGIN with these credentials. */
  auth?: { user: string; password: string };
}

export async function startMailServer(options: MailServerOptions = {}): Promise<MailServer> {
  const received: ReceivedMail[] = [];
  const attempts: string[] = [];
  let refuse: (address: string) => boolean = () => false;
  let waiters: (() => void)[] = [];
  const notify = () => waiters.forEach((w) => w());
  const server = new SMTPServer({
    // Plain SMTP on loopback: the client is configured with tls 'none'.
    disabledCommands: options.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: !options.auth,
    logger: false,
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.password) return callback(null, { user: auth.username });
      return callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, _session, callback) {
      attempts.push(address.address);
      notify();
      if (refuse(address.address)) return callback(Object.assign(new Error(`5.1.1 <${address.address}>: Recipient address rejected`), { responseCode: 550 }));
      return callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          received.push({
            envelope: { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) },
            ...(typeof session.user === 'string' ? { user: session.user } : {}),
            parsed,
          });
          callback();
          notify();
        })
        .catch((err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  const wait = <T>(ready: () => T | undefined): Promise<T> =>
    new Promise((resolve) => {
      const check = () => {
        const v = ready();
        if (v === undefined) return;
        waiters = waiters.filter((w) => w !== check);
        resolve(v);
      };
      waiters.push(check);
      check();
    });
  return {
    host: '127.0.0.1',
    port,
    received,
    recipientAttempts: attempts,
    refuseRecipients(pred) {
      refuse = pred;
    },
    until: (count) => wait(() => (received.length >= count ? received.slice() : undefined)),
    untilAttempts: (count) => wait(() => (attempts.length >= count ? attempts.slice() : undefined)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
