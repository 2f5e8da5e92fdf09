// A minimal HTTP server. Start it, then open the preview of port 3000.
const http = require("http");

const port = Number(process.env.PORT || 3000);

http
  .createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<h1>Hello from cove</h1><p>Edit index.js and restart.</p>");
  })
  .listen(port, () => console.log(`listening on http://localhost:${port}`));
