/**
 * The IG's Subscription SearchParameters (IG 1.1.0 §2.2), shipped as data and loaded by the search
 * parameter registry (src/fhir/search/params.ts) next to the R4 core ones. Copied from the IG with
 * these corrections (IG requirements §2.2 / §11.7):
 * - expressions: the IG evaluates `extension(…)` at the resource root, but the extensions sit on
 *   `Subscription.criteria`, `channel.type` and `channel.payload`; these search where they are, and use
 *   `ofType()` (the IG's `as Code` names no FHIR type);
 * - `custom-channel` and `payload-type` are `token` (a Coding and a code; the IG's `string` cannot
 *   match them), as IG 1.2.0-ballot also corrects; `topic` stays `uri` (exact canonical match);
 * - xpath removed (Clarion has no XML).
 */
import type { SearchParameter } from 'fhir/r4.js';
import customChannel from './SearchParameter-Subscription-custom-channel.json' with { type: 'json' };
import filterCriteria from './SearchParameter-Subscription-filter-criteria.json' with { type: 'json' };
import payloadType from './SearchParameter-Subscription-payload-type.json' with { type: 'json' };
import topic from './SearchParameter-Subscription-topic.json' with { type: 'json' };

export const SUBSCRIPTION_SEARCH_PARAMETERS: readonly SearchParameter[] = [topic, filterCriteria, customChannel, payloadType] as SearchParameter[];
