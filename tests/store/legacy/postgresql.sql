--
-- PostgreSQL database dump
--

\restrict ZNsrVTfIRCD53xLbUcxQWb9GC8Ghxa6FNuTTHD3UUJ7eqLDvVW1sed037AxlDPD

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: webhook_deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_deliveries (
    request_id character varying(36) NOT NULL,
    event character varying(64) NOT NULL,
    endpoint character varying(128) NOT NULL,
    url character varying NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    attempt_limit integer NOT NULL,
    last_http_status integer,
    payload character varying NOT NULL,
    reason character varying,
    worker character varying(255),
    replay_of character varying(36),
    attempt_started_at timestamp with time zone,
    next_attempt_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: webhook_endpoint_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_endpoint_state (
    name character varying(128) NOT NULL,
    disabled boolean NOT NULL,
    reason character varying,
    disabled_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: webhook_event_transaction_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_event_transaction_log (
    id integer NOT NULL,
    request_id character varying(36) NOT NULL,
    event character varying(64) NOT NULL,
    endpoint character varying(128) NOT NULL,
    url character varying NOT NULL,
    attempt integer NOT NULL,
    retry boolean NOT NULL,
    outcome character varying(16) NOT NULL,
    http_status integer,
    error character varying,
    response_body character varying,
    duration_ms integer,
    next_attempt_at timestamp with time zone,
    request_payload character varying,
    request_headers character varying,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: webhook_event_transaction_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.webhook_event_transaction_log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: webhook_event_transaction_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.webhook_event_transaction_log_id_seq OWNED BY public.webhook_event_transaction_log.id;


--
-- Name: webhook_status_counts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_status_counts (
    status character varying(16) NOT NULL,
    shard integer NOT NULL,
    count bigint NOT NULL
);


--
-- Name: webhook_event_transaction_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_event_transaction_log ALTER COLUMN id SET DEFAULT nextval('public.webhook_event_transaction_log_id_seq'::regclass);


--
-- Data for Name: webhook_deliveries; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.webhook_deliveries VALUES ('852f9c06-36a3-4ab3-8a9b-d452814d7f3e', 'order_changed', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 'queued', 0, 8, NULL, '{"event":"order_changed","timestamp":"2026-11-01T09:00:00Z","data":{"order_number":"ORDER-LEGACY-9","status":"updated","created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"852f9c06-36a3-4ab3-8a9b-d452814d7f3e","dispatched_by":"SYSTEM","retry":false}}', NULL, NULL, NULL, NULL, NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:00:00+00');
INSERT INTO public.webhook_deliveries VALUES ('c83fce58-934e-4f8b-8835-1c165f6ad279', 'message_created', 'gone', 'http://127.0.0.1:9/gone', 'failed', 0, 8, NULL, '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"c83fce58-934e-4f8b-8835-1c165f6ad279","dispatched_by":"SYSTEM","retry":false}}', 'endpoint_disabled', NULL, NULL, NULL, NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:00:00+00');
INSERT INTO public.webhook_deliveries VALUES ('15dc49fb-8e29-4429-ac46-5e950a86541a', 'message_created', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 'delivered', 1, 8, 200, '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"15dc49fb-8e29-4429-ac46-5e950a86541a","dispatched_by":"SYSTEM","retry":false}}', NULL, NULL, NULL, '2026-11-01 09:00:00+00', NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:01:00+00');
INSERT INTO public.webhook_deliveries VALUES ('c2257b7b-4d88-45ff-a1fb-6e2deb6c7862', 'message_created', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 'retrying', 1, 8, 503, '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"c2257b7b-4d88-45ff-a1fb-6e2deb6c7862","dispatched_by":"SYSTEM","retry":false}}', NULL, NULL, NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:06:00+00', '2026-11-01 09:00:00+00', '2026-11-01 09:01:00+00');
INSERT INTO public.webhook_deliveries VALUES ('6d648da9-f368-4126-b4f8-f437c1ffdc61', 'message_created', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 'failed', 1, 8, 404, '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"6d648da9-f368-4126-b4f8-f437c1ffdc61","dispatched_by":"SYSTEM","retry":false}}', 'HTTP 404 is not retried', NULL, NULL, '2026-11-01 09:00:00+00', NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:01:00+00');
INSERT INTO public.webhook_deliveries VALUES ('b7f76206-fb77-4fbf-b200-b2d03636a393', 'order_changed', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 'in_flight', 1, 8, NULL, '{"event":"order_changed","timestamp":"2026-11-01T09:00:00Z","data":{"order_number":"ORDER-LEGACY-9","status":"updated","created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"b7f76206-fb77-4fbf-b200-b2d03636a393","dispatched_by":"SYSTEM","retry":false}}', NULL, 'legacy-worker.2', NULL, '2026-11-01 09:02:00+00', NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:02:00+00');
INSERT INTO public.webhook_deliveries VALUES ('48620268-e7fd-4a12-ab0e-55dc5b658d35', 'order_changed', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 'failed', 0, 8, NULL, '{"event":"order_changed","timestamp":"2026-11-01T09:00:00Z","data":{"order_number":"ORDER-LEGACY-9","status":"updated","created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"48620268-e7fd-4a12-ab0e-55dc5b658d35","dispatched_by":"SYSTEM","retry":false}}', 'stored payload is unusable: test', NULL, NULL, NULL, NULL, '2026-11-01 09:00:00+00', '2026-11-01 09:00:00+00');


--
-- Data for Name: webhook_endpoint_state; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.webhook_endpoint_state VALUES ('gone', true, 'HTTP 410 Gone', '2026-12-04 20:31:49.395791+00', '2026-12-04 20:31:49.395791+00');


--
-- Data for Name: webhook_event_transaction_log; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.webhook_event_transaction_log VALUES (1, '15dc49fb-8e29-4429-ac46-5e950a86541a', 'message_created', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 1, false, 'delivered', 200, NULL, '{"received": true, "echo": "Lisinopril"}', 40, NULL, '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"15dc49fb-8e29-4429-ac46-5e950a86541a","dispatched_by":"SYSTEM","retry":false}}', '{"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}', '2026-11-01 09:01:00+00');
INSERT INTO public.webhook_event_transaction_log VALUES (2, 'c2257b7b-4d88-45ff-a1fb-6e2deb6c7862', 'message_created', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 1, false, 'retry_scheduled', 503, 'HTTP 503', '{"received": true, "echo": "Lisinopril"}', 40, '2026-11-01 09:06:00+00', '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"c2257b7b-4d88-45ff-a1fb-6e2deb6c7862","dispatched_by":"SYSTEM","retry":false}}', '{"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}', '2026-11-01 09:01:00+00');
INSERT INTO public.webhook_event_transaction_log VALUES (3, '6d648da9-f368-4126-b4f8-f437c1ffdc61', 'message_created', 'pharmacy', 'http://127.0.0.1:9/pharmacy', 1, false, 'failed', 404, 'HTTP 404', '{"received": true, "echo": "Lisinopril"}', 40, NULL, '{"event":"message_created","timestamp":"2026-11-01T09:00:00Z","data":{"patient_id":"PATIENT-LEGACY-7","encounter_id":"ENC-LEGACY-3","author_id":"DR-LEGACY-2","is_doctor":true,"reply_message_id":null,"channel":"patient","message":"Please take 20 mg of Lisinopril with breakfast (legacy row)","attachment":[],"created_at":"2026-11-01T09:00:00Z"},"metadata":{"source":"Baremeds","environment":"staging","webhook_version":"v1.0","request_id":"6d648da9-f368-4126-b4f8-f437c1ffdc61","dispatched_by":"SYSTEM","retry":false}}', '{"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}', '2026-11-01 09:01:00+00');


--
-- Data for Name: webhook_status_counts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.webhook_status_counts VALUES ('delivered', 7, 1);
INSERT INTO public.webhook_status_counts VALUES ('failed', 7, 3);


--
-- Name: webhook_event_transaction_log_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.webhook_event_transaction_log_id_seq', 3, true);


--
-- Name: webhook_deliveries webhook_deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (request_id);


--
-- Name: webhook_endpoint_state webhook_endpoint_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_endpoint_state
    ADD CONSTRAINT webhook_endpoint_state_pkey PRIMARY KEY (name);


--
-- Name: webhook_event_transaction_log webhook_event_transaction_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_event_transaction_log
    ADD CONSTRAINT webhook_event_transaction_log_pkey PRIMARY KEY (id);


--
-- Name: webhook_status_counts webhook_status_counts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_status_counts
    ADD CONSTRAINT webhook_status_counts_pkey PRIMARY KEY (status, shard);


--
-- Name: ix_webhook_deliveries_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_deliveries_created_at ON public.webhook_deliveries USING btree (created_at);


--
-- Name: ix_webhook_deliveries_endpoint; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_deliveries_endpoint ON public.webhook_deliveries USING btree (endpoint);


--
-- Name: ix_webhook_deliveries_event; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_deliveries_event ON public.webhook_deliveries USING btree (event);


--
-- Name: ix_webhook_deliveries_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_deliveries_status ON public.webhook_deliveries USING btree (status);


--
-- Name: ix_webhook_deliveries_updated_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_deliveries_updated_at ON public.webhook_deliveries USING btree (updated_at);


--
-- Name: ix_webhook_event_transaction_log_created_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_event_transaction_log_created_at ON public.webhook_event_transaction_log USING btree (created_at);


--
-- Name: ix_webhook_event_transaction_log_request_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_event_transaction_log_request_id ON public.webhook_event_transaction_log USING btree (request_id);


--
-- PostgreSQL database dump complete
--

\unrestrict ZNsrVTfIRCD53xLbUcxQWb9GC8Ghxa6FNuTTHD3UUJ7eqLDvVW1sed037AxlDPD

