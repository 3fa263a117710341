/**
 * The topics shipped with Clarion, as R5 SubscriptionTopic JSON. Imported (not read from the folder)
 * so that they are part of the build output; add a file here to ship another topic.
 */
import admission from './admission.json' with { type: 'json' };
import diagnosticReportFinal from './diagnosticreport-final.json' with { type: 'json' };
import encounterComplete from './encounter-complete.json' with { type: 'json' };
import observationNew from './observation-new.json' with { type: 'json' };
import patientChanged from './patient-changed.json' with { type: 'json' };

export interface TopicDocument {
  /** Where the definition comes from, for messages (`builtin:admission.json`, a file path, …). */
  source: string;
  /** The topic resource as parsed JSON, in any wire form. */
  json: unknown;
}

export const BUILTIN_TOPICS: readonly TopicDocument[] = [
  { source: 'builtin:encounter-complete.json', json: encounterComplete },
  { source: 'builtin:admission.json', json: admission },
  { source: 'builtin:observation-new.json', json: observationNew },
  { source: 'builtin:diagnosticreport-final.json', json: diagnosticReportFinal },
  { source: 'builtin:patient-changed.json', json: patientChanged },
];
