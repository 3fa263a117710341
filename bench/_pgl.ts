import { PgliteDb } from '../src/store/pglite-db.js';
import { migrate } from '../src/store/migrations.js';
const db = await PgliteDb.open();
await migrate(db);
let t = performance.now(); for (let i = 0; i < 2000; i++) await db.query('SELECT 1'); console.log('select 1 us', ((performance.now() - t) / 2).toFixed(0));
t = performance.now(); for (let i = 0; i < 2000; i++) await db.query('SELECT last_value, is_called FROM resource_history_seq_seq'); console.log('seq us', ((performance.now() - t) / 2).toFixed(0));
t = performance.now(); for (let i = 0; i < 500; i++) await db.transaction(async (tx) => { await tx.query('SELECT 1'); }); console.log('tx us', ((performance.now() - t) / 0.5).toFixed(0));
t = performance.now(); for (let i = 0; i < 500; i++) await db.query(`INSERT INTO feed_positions (consumer, position) VALUES ($1, 0)`, ['c' + i]); console.log('insert us', ((performance.now() - t) / 0.5).toFixed(0));
await db.close();
