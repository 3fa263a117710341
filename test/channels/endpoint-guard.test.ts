import { describe, expect, it } from 'vitest';
import { EndpointGuard, unmapIPv4 } from '../../src/channels/endpoint-guard.js';

const strict = new EndpointGuard({ allow: [], allowHttp: false });

describe('endpoint guard', () => {
  it.each([
    '127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1',
    '::1', '::', 'fe80::1', 'fd00:ec2::254', 'fc00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::7f00:1',
  ])('refuses special-purpose address %s', (address) => {
    expect(strict.refuseAddress(address)).toMatch(/special-purpose/);
  });

  it.each(['93.184.216.34', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8'])('accepts public address %s', (address) => {
    expect(strict.refuseAddress(address)).toBeUndefined();
  });

  it('unmaps IPv4-mapped IPv6 in both notations', () => {
    expect(unmapIPv4('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(unmapIPv4('::ffff:a00:1')).toBe('10.0.0.1');
    expect(unmapIPv4('2001:db8::1')).toBe('2001:db8::1');
  });

  it('checks URLs: scheme, plain http, credentials and IP literals', () => {
    expect(strict.refuseUrl('ftp://example.org/x')).toMatch(/scheme 'ftp:'/);
    expect(strict.refuseUrl('http://example.org/x')).toMatch(/plain http is refused/);
    expect(strict.refuseUrl('https://user:pw@example.org/x')).toMatch(/credentials/);
    expect(strict.refuseUrl('https://[::1]:8443/x')).toMatch(/special-purpose/);
    expect(strict.refuseUrl('https://10.0.0.8/x')).toMatch(/special-purpose/);
    expect(strict.refuseUrl('not a url')).toMatch(/not an absolute URL/);
    expect(strict.refuseUrl('https://example.org/hook')).toBeUndefined();
  });

  it('gives the same verdict when asked again, past the bound of remembered URLs', () => {
    const guard = new EndpointGuard({ allow: [], allowHttp: false });
    for (let i = 0; i < 10_050; i++) expect(guard.refuseUrl(`https://example.org/hook/${i}`)).toBeUndefined();
    expect(guard.refuseUrl('https://10.0.0.8/x')).toMatch(/special-purpose/);
    expect(guard.refuseUrl('https://10.0.0.8/x')).toMatch(/special-purpose/);
    expect(guard.refuseUrl('https://example.org/hook/1')).toBeUndefined();
  });

  it('opens allow-listed hosts and ranges', () => {
    const dev = new EndpointGuard({ allow: ['127.0.0.0/8', 'localhost', '::1'], allowHttp: true });
    expect(dev.refuseUrl('http://127.0.0.1:9999/x')).toBeUndefined();
    expect(dev.refuseAddress('::1')).toBeUndefined();
    expect(dev.refuseAddress('127.0.0.1', 'localhost')).toBeUndefined();
    expect(dev.refuseAddress('10.0.0.1')).toMatch(/special-purpose/);
  });

  it('refuses in the DNS lookup what a host name resolves to', async () => {
    const err = await new Promise<Error | null>((resolve) => strict.lookup('localhost', {}, (e) => resolve(e)));
    expect(err?.message).toMatch(/special-purpose/);
  });
});
