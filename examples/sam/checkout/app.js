// The example's application: the function ShiftGuard guards in ../template.yaml. API Gateway
// (REST, proxy integration) sends GET /quote; ShiftGuard's hooks invoke it directly with the same
// event shape (`{"httpMethod": "GET", "path": "/health"}`) and expect a 200.
'use strict';

const json = (statusCode, body) => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

// One item's price in cents: a stand-in for the pricing a real checkout would look up.
const UNIT_PRICE_CENTS = 1250;

exports.handler = async (event) => {
  const method = event?.httpMethod;
  const path = event?.path;
  if (method === 'GET' && path === '/health') return json(200, { status: 'ok' });
  if (method === 'GET' && path === '/quote') {
    const raw = event.queryStringParameters?.items ?? '1';
    const items = /^[1-9][0-9]{0,2}$/.test(raw) ? Number(raw) : NaN;
    if (Number.isNaN(items)) return json(400, { error: 'items must be a whole number from 1 to 999' });
    return json(200, { items, currency: 'EUR', totalCents: items * UNIT_PRICE_CENTS });
  }
  return json(404, { error: `no route for ${method} ${path}` });
};
