<?php
/**
 * Signed webhook delivery with a persistent retry queue ({prefix}igny8_outbox).
 *
 * A delivery keeps its webhook-id for every retry (so the service can deduplicate) and gets a
 * fresh webhook-timestamp and webhook-signature per attempt (the service rejects timestamps
 * older than 5 minutes). Retried: network errors, 429, 5xx and any other non-final status.
 * Final (dropped): 400, 404, 409, 410, 413, 422. Backoff 1, 2, 4, ... minutes capped at 1 hour;
 * a delivery older than 24 hours is dropped with an error_log line.
 *
 * @package Igny8_Bridge
 */

defined( 'ABSPATH' ) || exit;

const IGNY8_BRIDGE_OUTBOX_MAX_AGE   = DAY_IN_SECONDS;
const IGNY8_BRIDGE_OUTBOX_MAX_DELAY = HOUR_IN_SECONDS;
const IGNY8_BRIDGE_OUTBOX_BATCH     = 50;

/**
 * Outbox table name.
 */
function igny8_bridge_outbox_table(): string {
	global $wpdb;
	return $wpdb->prefix . 'igny8_outbox';
}

/**
 * Creates or upgrades the outbox table with dbDelta.
 */
function igny8_bridge_install_table(): void {
	global $wpdb;
	require_once ABSPATH . 'wp-admin/includes/upgrade.php';

	$table           = igny8_bridge_outbox_table();
	$charset_collate = $wpdb->get_charset_collate();

	$sql = "CREATE TABLE {$table} (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  webhook_id varchar(64) NOT NULL,
  url varchar(2048) NOT NULL,
  body longtext NOT NULL,
  attempts int(10) unsigned NOT NULL DEFAULT 0,
  next_attempt_at datetime NOT NULL,
  created_at datetime NOT NULL,
  last_error text NULL,
  PRIMARY KEY  (id),
  KEY next_attempt_at (next_attempt_at),
  KEY webhook_id (webhook_id)
) {$charset_collate};";

	dbDelta( $sql );
	update_option( IGNY8_BRIDGE_OPT_DB_VERSION, IGNY8_BRIDGE_DB_VERSION );
}

/**
 * HTTP statuses after which a delivery is dropped instead of retried.
 *
 * @param int $status HTTP status.
 */
function igny8_bridge_is_final_status( int $status ): bool {
	$final = apply_filters( 'igny8_bridge_final_statuses', array( 400, 404, 409, 410, 413, 422 ) );
	return in_array( $status, (array) $final, true );
}

/**
 * Backoff after $attempts failed attempts: 60 s * 2^(attempts-1), capped at 1 h.
 *
 * @param int $attempts Failed attempts so far (>= 1).
 */
function igny8_bridge_backoff_seconds( int $attempts ): int {
	$attempts = max( 1, $attempts );
	if ( $attempts > 12 ) {
		return IGNY8_BRIDGE_OUTBOX_MAX_DELAY;
	}
	return (int) min( MINUTE_IN_SECONDS * ( 2 ** ( $attempts - 1 ) ), IGNY8_BRIDGE_OUTBOX_MAX_DELAY );
}

/**
 * One signed delivery attempt (fresh timestamp and signature).
 *
 * @param string $webhook_id Stable webhook id.
 * @param string $url        Absolute URL.
 * @param string $body       JSON body.
 * @return array{outcome: string, status: int, message: string} outcome is delivered|retry|final.
 */
function igny8_bridge_attempt_delivery( string $webhook_id, string $url, string $body ): array {
	$key = igny8_bridge_get_api_key();
	if ( '' === $key ) {
		return array(
			'outcome' => 'retry',
			'status'  => 0,
			'message' => 'Plugin is not configured (no API key).',
		);
	}

	$timestamp = time();
	$result    = igny8_bridge_http_post_json(
		$url,
		$body,
		array(
			'webhook-id'        => $webhook_id,
			'webhook-timestamp' => (string) $timestamp,
			'webhook-signature' => igny8_bridge_sign( $webhook_id, $timestamp, $body, $key ),
			'X-API-Key'         => $key,
		)
	);

	if ( $result['ok'] ) {
		$outcome = 'delivered';
	} elseif ( ! $result['network_error'] && igny8_bridge_is_final_status( $result['status'] ) ) {
		$outcome = 'final';
	} else {
		$outcome = 'retry';
	}

	return array(
		'outcome' => $outcome,
		'status'  => (int) $result['status'],
		'message' => $result['status'] ? 'HTTP ' . $result['status'] . ': ' . $result['message'] : $result['message'],
	);
}

/**
 * Sends a webhook now; queues it in the outbox when the attempt fails with a retryable error.
 *
 * @param string $path    Path below /api/v1/, e.g. 'integration/webhooks/wordpress/status/'.
 * @param array  $payload JSON-serialisable body.
 * @return array{webhook_id: string, outcome: string, status: int, message: string} outcome is
 *               delivered|queued|final|skipped.
 */
function igny8_bridge_send_webhook( string $path, array $payload ): array {
	$webhook_id = igny8_bridge_new_webhook_id();
	if ( ! igny8_bridge_is_configured() ) {
		return array(
			'webhook_id' => $webhook_id,
			'outcome'    => 'skipped',
			'status'     => 0,
			'message'    => 'Plugin is not configured.',
		);
	}

	$url  = igny8_bridge_service_endpoint( $path );
	$body = (string) wp_json_encode( $payload, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );

	$result = igny8_bridge_attempt_delivery( $webhook_id, $url, $body );
	if ( 'retry' === $result['outcome'] ) {
		igny8_bridge_outbox_insert( $webhook_id, $url, $body, 1, $result['message'] );
		$result['outcome'] = 'queued';
	} elseif ( 'final' === $result['outcome'] ) {
		error_log( sprintf( 'IGNY8 Bridge: webhook %s to %s rejected (%s); dropped.', $webhook_id, (string) wp_parse_url( $url, PHP_URL_PATH ), $result['message'] ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
	}

	return array( 'webhook_id' => $webhook_id ) + $result;
}

/**
 * Queues a failed delivery.
 *
 * @param string $webhook_id Stable webhook id.
 * @param string $url        Absolute URL.
 * @param string $body       JSON body.
 * @param int    $attempts   Attempts already made.
 * @param string $last_error Last error (no secrets).
 */
function igny8_bridge_outbox_insert( string $webhook_id, string $url, string $body, int $attempts, string $last_error ): bool {
	global $wpdb;
	$now  = time();
	$data = array(
		'webhook_id'      => $webhook_id,
		'url'             => $url,
		'body'            => $body,
		'attempts'        => $attempts,
		'next_attempt_at' => gmdate( 'Y-m-d H:i:s', $now + igny8_bridge_backoff_seconds( $attempts ) ),
		'created_at'      => gmdate( 'Y-m-d H:i:s', $now ),
		'last_error'      => $last_error,
	);
	$format = array( '%s', '%s', '%s', '%d', '%s', '%s', '%s' );

	$ok = $wpdb->insert( igny8_bridge_outbox_table(), $data, $format ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
	if ( false === $ok ) {
		// Table missing (e.g. files copied in without activation): create it and try once more.
		igny8_bridge_install_table();
		$ok = $wpdb->insert( igny8_bridge_outbox_table(), $data, $format ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
	}
	if ( false === $ok ) {
		error_log( sprintf( 'IGNY8 Bridge: could not queue webhook %s: %s', $webhook_id, $wpdb->last_error ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
		return false;
	}
	igny8_bridge_outbox_refresh_due();
	return true;
}

/**
 * Stores the unix time of the earliest due delivery (0 when the outbox is empty) in an
 * autoloaded option, so the opportunistic drain on shutdown costs no query on most requests.
 */
function igny8_bridge_outbox_refresh_due(): int {
	global $wpdb;
	$table = igny8_bridge_outbox_table();
	$min   = $wpdb->get_var( "SELECT MIN(next_attempt_at) FROM {$table}" ); // phpcs:ignore WordPress.DB
	$due   = $min ? (int) strtotime( $min . ' UTC' ) : 0;
	update_option( IGNY8_BRIDGE_OPT_OUTBOX_DUE, $due, true );
	return $due;
}

/**
 * Number of queued deliveries.
 */
function igny8_bridge_outbox_count(): int {
	global $wpdb;
	$table = igny8_bridge_outbox_table();
	return (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$table}" ); // phpcs:ignore WordPress.DB
}

/**
 * Retries queued deliveries.
 *
 * @param bool $force Ignore next_attempt_at and retry every queued delivery now (tests, manual drain).
 * @return array{processed: int, delivered: int, retried: int, dropped: int, expired: int, remaining: int}
 */
function igny8_bridge_drain_outbox( bool $force = false ): array {
	global $wpdb;
	$table  = igny8_bridge_outbox_table();
	$counts = array(
		'processed' => 0,
		'delivered' => 0,
		'retried'   => 0,
		'dropped'   => 0,
		'expired'   => 0,
		'remaining' => 0,
	);

	$now_ts  = time();
	$started = microtime( true );

	if ( $force ) {
		$rows = $wpdb->get_results( $wpdb->prepare( "SELECT * FROM {$table} ORDER BY id ASC LIMIT %d", IGNY8_BRIDGE_OUTBOX_BATCH ), ARRAY_A ); // phpcs:ignore WordPress.DB
	} else {
		$rows = $wpdb->get_results( $wpdb->prepare( "SELECT * FROM {$table} WHERE next_attempt_at <= %s ORDER BY next_attempt_at ASC, id ASC LIMIT %d", gmdate( 'Y-m-d H:i:s', $now_ts ), IGNY8_BRIDGE_OUTBOX_BATCH ), ARRAY_A ); // phpcs:ignore WordPress.DB
	}

	foreach ( (array) $rows as $row ) {
		// Keep a cron/shutdown run short; what is left waits for the next run.
		if ( ! $force && ( microtime( true ) - $started ) > 25 ) {
			break;
		}

		$id       = (int) $row['id'];
		$attempts = (int) $row['attempts'];
		$created  = (int) strtotime( $row['created_at'] . ' UTC' );
		$path     = (string) wp_parse_url( $row['url'], PHP_URL_PATH );

		if ( $created + IGNY8_BRIDGE_OUTBOX_MAX_AGE <= time() ) {
			$wpdb->delete( $table, array( 'id' => $id ), array( '%d' ) ); // phpcs:ignore WordPress.DB
			error_log( sprintf( 'IGNY8 Bridge: giving up on webhook %s to %s after %d attempts over 24 h; last error: %s', $row['webhook_id'], $path, $attempts, (string) $row['last_error'] ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
			++$counts['expired'];
			continue;
		}

		// Claim the row so a concurrent drain (cron + shutdown) does not send it twice.
		$claimed = $wpdb->query( // phpcs:ignore WordPress.DB
			$wpdb->prepare(
				"UPDATE {$table} SET attempts = attempts + 1, next_attempt_at = %s WHERE id = %d AND attempts = %d", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
				gmdate( 'Y-m-d H:i:s', time() + 5 * MINUTE_IN_SECONDS ),
				$id,
				$attempts
			)
		);
		if ( 1 !== (int) $claimed ) {
			continue;
		}
		++$attempts;
		++$counts['processed'];

		$result = igny8_bridge_attempt_delivery( (string) $row['webhook_id'], (string) $row['url'], (string) $row['body'] );

		if ( 'delivered' === $result['outcome'] ) {
			$wpdb->delete( $table, array( 'id' => $id ), array( '%d' ) ); // phpcs:ignore WordPress.DB
			++$counts['delivered'];
		} elseif ( 'final' === $result['outcome'] ) {
			$wpdb->delete( $table, array( 'id' => $id ), array( '%d' ) ); // phpcs:ignore WordPress.DB
			error_log( sprintf( 'IGNY8 Bridge: webhook %s to %s rejected (%s); dropped.', $row['webhook_id'], $path, $result['message'] ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
			++$counts['dropped'];
		} else {
			$wpdb->update( // phpcs:ignore WordPress.DB
				$table,
				array(
					'next_attempt_at' => gmdate( 'Y-m-d H:i:s', time() + igny8_bridge_backoff_seconds( $attempts ) ),
					'last_error'      => $result['message'],
				),
				array( 'id' => $id ),
				array( '%s', '%s' ),
				array( '%d' )
			);
			++$counts['retried'];
		}
	}

	igny8_bridge_outbox_refresh_due();
	$counts['remaining'] = igny8_bridge_outbox_count();
	return $counts;
}

/**
 * Cron callback (every minute).
 */
function igny8_bridge_cron_drain(): void {
	set_transient( 'igny8_bridge_drain_lock', 1, MINUTE_IN_SECONDS );
	igny8_bridge_drain_outbox( false );
}

/**
 * Opportunistic drain at the end of a request, at most once per minute (transient lock), and
 * only when the autoloaded "next due" marker says something is due.
 */
function igny8_bridge_shutdown_drain(): void {
	$due = (int) get_option( IGNY8_BRIDGE_OPT_OUTBOX_DUE, 0 );
	if ( $due <= 0 || $due > time() || ! igny8_bridge_is_configured() ) {
		return;
	}
	if ( get_transient( 'igny8_bridge_drain_lock' ) ) {
		return;
	}
	set_transient( 'igny8_bridge_drain_lock', 1, MINUTE_IN_SECONDS );
	igny8_bridge_drain_outbox( false );
}
add_action( 'shutdown', 'igny8_bridge_shutdown_drain', 30 );
