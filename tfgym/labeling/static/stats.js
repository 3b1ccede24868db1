/* tfgym labeling: the stats page reloads itself every 15 s. */
"use strict";
setTimeout(() => location.reload(), 15000);
