/**
 * Test files that never touch storage (no database, no server): pure FHIR, topic, notification and
 * channel logic. They run in the PGlite pass of the suite only; running them again against PostgreSQL
 * would test the same code twice (CI runs the suite once per backend). `storage-independent.test.ts`
 * checks that this list is exact.
 */
export const STORAGE_INDEPENDENT_TESTS = [
  'test/channels/email-channel.test.ts',
  'test/channels/endpoint-guard.test.ts',
  'test/channels/message-channel.test.ts',
  'test/channels/rest-hook-channel.test.ts',
  'test/channels/websocket/slow-reader.test.ts',
  'test/delivery/progress-recorder.test.ts',
  'test/fhir/capability-statement.test.ts',
  'test/fhir/error-registry.test.ts',
  'test/fhir/json-patch.test.ts',
  'test/fhir/quick-validation.test.ts',
  'test/fhir/search/extract.test.ts',
  'test/fhir/search/filter-keys.test.ts',
  'test/fhir/search/parse.test.ts',
  'test/fhir/search/summary.test.ts',
  'test/fhir/validation.test.ts',
  'test/fhir/xml.test.ts',
  'test/notify/bundle-builder.test.ts',
  'test/notify/status-report.test.ts',
  'test/server/config.test.ts',
  'test/subscriptions/subscription-index.test.ts',
  'test/topics/builtin-topics.test.ts',
  'test/topics/state-change-fhirpath.test.ts',
  'test/topics/topic-registry.test.ts',
  'test/topics/trigger-evaluator.test.ts',
  'test/versions/notification-r4.test.ts',
  'test/versions/notification-r4b-r5.test.ts',
  'test/versions/notification-templates.test.ts',
  'test/versions/topic-errors.test.ts',
  'test/versions/topic-fixtures.test.ts',
];

/** Imports that mean a test file uses storage (a database, or a server on one). */
export const STORAGE_MARKERS = /support\/(test-db|server|server-process|subscription-e2e)\.js|subscription-support\.js|src\/store\/|src\/server\/(app|cli)\.js/;
