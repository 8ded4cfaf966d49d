// A tiny Express app for gatehouse init's test: it listens on the PORT
// gatehouse gives it and answers GET / with a known body.
const express = require('express');

const app = express();
app.get('/', (req, res) => res.type('text/plain').send('hello from express\n'));
app.listen(Number(process.env.PORT), '127.0.0.1');
