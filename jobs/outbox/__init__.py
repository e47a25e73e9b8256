"""The WeCom outbox sender, in parts: `request` (an outbox row -> the API request), `policy` (what an
answer means for the row: pure), `rows` (the database side: claims, results, gauges). The loop that
ties them together is `jobs.outbox_sender.OutboxSender`."""
