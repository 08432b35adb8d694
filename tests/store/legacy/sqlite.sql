BEGIN TRANSACTION;
CREATE TABLE webhook_deliveries (
	request_id VARCHAR(36) NOT NULL, 
	event VARCHAR(64) NOT NULL, 
	endpoint VARCHAR(128) NOT NULL, 
	url VARCHAR NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	attempt_limit INTEGER NOT NULL, 
	last_http_status INTEGER, 
	payload VARCHAR NOT NULL, 
	reason VARCHAR, 
	worker VARCHAR(255), 
	replay_of VARCHAR(36), 
	attempt_started_at DATETIME, 
	next_attempt_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (request_id)
);
INSERT INTO "webhook_deliveries" VALUES('525973e1-dcd2-4e1a-8d4b-ec80d121660c','message_created','pharmacy','http://127.0.0.1:9/pharmacy','delivered',1,8,200,'{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"525973e1-dcd2-4e1a-8d4b-ec80d121660c","dispatched_by":"SYSTEM","retry":false}}',NULL,NULL,NULL,'2026-11-01 09:00:00.000000',NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:01:00.000000');
INSERT INTO "webhook_deliveries" VALUES('9627a01a-2853-4ae2-ba71-e56a2873c065','message_created','pharmacy','http://127.0.0.1:9/pharmacy','retrying',1,8,503,'{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"9627a01a-2853-4ae2-ba71-e56a2873c065","dispatched_by":"SYSTEM","retry":false}}',NULL,NULL,NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:06:00.000000','2026-11-01 09:00:00.000000','2026-11-01 09:01:00.000000');
INSERT INTO "webhook_deliveries" VALUES('fadda59a-262d-42e2-8022-e3f2ed8a2ad6','message_created','pharmacy','http://127.0.0.1:9/pharmacy','failed',1,8,404,'{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"fadda59a-262d-42e2-8022-e3f2ed8a2ad6","dispatched_by":"SYSTEM","retry":false}}','HTTP 404 is not retried',NULL,NULL,'2026-11-01 09:00:00.000000',NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:01:00.000000');
INSERT INTO "webhook_deliveries" VALUES('6d62d8e4-dcf5-40cb-a7c2-75e5a269a4d1','order_changed','pharmacy','http://127.0.0.1:9/pharmacy','in_flight',1,8,NULL,'{"event":"order_changed","timestamp":"2026-11-01T09:00:00Z","data":{"order_number":"ORDER-LEGACY-9","status":"updated","created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"6d62d8e4-dcf5-40cb-a7c2-75e5a269a4d1","dispatched_by":"SYSTEM","retry":false}}',NULL,'legacy-worker.2',NULL,'2026-11-01 09:02:00.000000',NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:02:00.000000');
INSERT INTO "webhook_deliveries" VALUES('7d467649-f1ba-41c8-8bc5-36f2fd2dde00','order_changed','pharmacy','http://127.0.0.1:9/pharmacy','queued',0,8,NULL,'{"event":"order_changed","timestamp":"2026-11-01T09:00:00Z","data":{"order_number":"ORDER-LEGACY-9","status":"updated","created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"7d467649-f1ba-41c8-8bc5-36f2fd2dde00","dispatched_by":"SYSTEM","retry":false}}',NULL,NULL,NULL,NULL,NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:00:00.000000');
INSERT INTO "webhook_deliveries" VALUES('07c28943-5b24-4155-babb-6942b0077da6','order_changed','pharmacy','http://127.0.0.1:9/pharmacy','failed',0,8,NULL,'{"event":"order_changed","timestamp":"2026-11-01T09:00:00Z","data":{"order_number":"ORDER-LEGACY-9","status":"updated","created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"07c28943-5b24-4155-babb-6942b0077da6","dispatched_by":"SYSTEM","retry":false}}','stored payload is unusable: test',NULL,NULL,NULL,NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:00:00.000000');
INSERT INTO "webhook_deliveries" VALUES('c8ab3709-a80f-4eed-a1ef-a777b276776a','message_created','gone','http://127.0.0.1:9/gone','failed',0,8,NULL,'{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"c8ab3709-a80f-4eed-a1ef-a777b276776a","dispatched_by":"SYSTEM","retry":false}}','endpoint_disabled',NULL,NULL,NULL,NULL,'2026-11-01 09:00:00.000000','2026-11-01 09:00:00.000000');
CREATE TABLE webhook_endpoint_state (
	name VARCHAR(128) NOT NULL, 
	disabled BOOLEAN NOT NULL, 
	reason VARCHAR, 
	disabled_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO "webhook_endpoint_state" VALUES('gone',1,'HTTP 410 Gone','2026-12-04 20:31:48.634601','2026-12-04 20:31:48.634601');
CREATE TABLE webhook_event_transaction_log (
	id INTEGER NOT NULL, 
	request_id VARCHAR(36) NOT NULL, 
	event VARCHAR(64) NOT NULL, 
	endpoint VARCHAR(128) NOT NULL, 
	url VARCHAR NOT NULL, 
	attempt INTEGER NOT NULL, 
	retry BOOLEAN NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	http_status INTEGER, 
	error VARCHAR, 
	response_body VARCHAR, 
	duration_ms INTEGER, 
	next_attempt_at DATETIME, 
	request_payload VARCHAR, 
	request_headers VARCHAR, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "webhook_event_transaction_log" VALUES(1,'525973e1-dcd2-4e1a-8d4b-ec80d121660c','message_created','pharmacy','http://127.0.0.1:9/pharmacy',1,0,'delivered',200,NULL,'{"received": true, "echo": "Lisinopril"}',40,NULL,'{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"525973e1-dcd2-4e1a-8d4b-ec80d121660c","dispatched_by":"SYSTEM","retry":false}}','{"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}','2026-11-01 09:01:00.000000');
INSERT INTO "webhook_event_transaction_log" VALUES(2,'9627a01a-2853-4ae2-ba71-e56a2873c065','message_created','pharmacy','http://127.0.0.1:9/pharmacy',1,0,'retry_scheduled',503,'HTTP 503','{"received": true, "echo": "Lisinopril"}',40,'2026-11-01 09:06:00.000000','{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"9627a01a-2853-4ae2-ba71-e56a2873c065","dispatched_by":"SYSTEM","retry":false}}','{"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}','2026-11-01 09:01:00.000000');
INSERT INTO "webhook_event_transaction_log" VALUES(3,'fadda59a-262d-42e2-8022-e3f2ed8a2ad6','message_created','pharmacy','http://127.0.0.1:9/pharmacy',1,0,'failed',404,'HTTP 404','{"received": true, "echo": "Lisinopril"}',40,NULL,'{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"fadda59a-262d-42e2-8022-e3f2ed8a2ad6","dispatched_by":"SYSTEM","retry":false}}','{"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}','2026-11-01 09:01:00.000000');
CREATE TABLE webhook_status_counts (
	status VARCHAR(16) NOT NULL, 
	shard INTEGER NOT NULL, 
	count BIGINT NOT NULL, 
	PRIMARY KEY (status, shard)
);
INSERT INTO "webhook_status_counts" VALUES('failed',4,3);
INSERT INTO "webhook_status_counts" VALUES('delivered',4,1);
CREATE INDEX ix_webhook_deliveries_endpoint ON webhook_deliveries (endpoint);
CREATE INDEX ix_webhook_deliveries_event ON webhook_deliveries (event);
CREATE INDEX ix_webhook_deliveries_created_at ON webhook_deliveries (created_at);
CREATE INDEX ix_webhook_deliveries_updated_at ON webhook_deliveries (updated_at);
CREATE INDEX ix_webhook_deliveries_status ON webhook_deliveries (status);
CREATE INDEX ix_webhook_event_transaction_log_request_id ON webhook_event_transaction_log (request_id);
CREATE INDEX ix_webhook_event_transaction_log_created_at ON webhook_event_transaction_log (created_at);
COMMIT;
