<?php
/**
 * Plugin Name: IGNY8 e2e request hold (TEST ONLY)
 * Description: Installed by scripts/wordpress-e2e.sh into throwaway test sites only. Lets a test
 * stop a REST request after WordPress has done its work but before the caller has the answer (the
 * moment a caller killed mid-request leaves behind: the attachment or post exists, the caller
 * never learnt its id). Inert unless the file wp-content/igny8-e2e-hold/hold.json exists:
 *   {"method": "POST", "route": "/wp/v2/media", "skip": 0, "timeout": 60}
 * Every successful REST request with that method and route (exactly; a trailing slash ignored),
 * but the first `skip` of them, is handled in full and then, in rest_post_dispatch, writes
 * wp-content/igny8-e2e-hold/held-<unique>
 * (JSON: route, status, the created object's id) and waits until the file `release` appears in
 * that folder (or `timeout` seconds pass) before its answer is sent; the held-* file is removed
 * when it goes on. The caller's connection may be gone by then: the request still ends normally.
 * (php -S may have accepted another connection in the held process: that request waits too, unseen,
 * so a test should hold a caller that has one request in flight.)
 * NEVER install this on a real site.
 */

if (!defined('ABSPATH')) {
    exit;
}

add_filter('rest_post_dispatch', function ($response, $server, $request) {
    $dir = WP_CONTENT_DIR . '/igny8-e2e-hold';
    $config_file = $dir . '/hold.json';
    if (!is_file($config_file) || !$response instanceof WP_REST_Response || $response->get_status() >= 300) {
        return $response;
    }
    $config = json_decode((string) @file_get_contents($config_file), true);
    if (!is_array($config)
        || strtoupper((string) ($config['method'] ?? 'POST')) !== $request->get_method()
        || rtrim((string) ($config['route'] ?? ''), '/') !== rtrim($request->get_route(), '/')) {
        return $response;
    }
    $skip = (int) ($config['skip'] ?? 0);
    if ($skip > 0) {
        $counter = fopen($dir . '/count', 'c+');
        flock($counter, LOCK_EX);
        $seen = (int) stream_get_contents($counter);
        ftruncate($counter, 0);
        rewind($counter);
        fwrite($counter, (string) ($seen + 1));
        flock($counter, LOCK_UN);
        fclose($counter);
        if ($seen < $skip) {
            return $response;
        }
    }
    $data = $response->get_data();
    $marker = $dir . '/held-' . uniqid((string) getmypid(), true);
    @file_put_contents($marker, json_encode([
        'route' => $request->get_route(),
        'status' => $response->get_status(),
        'id' => is_array($data) && isset($data['id']) ? $data['id'] : null,
    ]));
    $deadline = microtime(true) + (float) ($config['timeout'] ?? 60);
    ignore_user_abort(true);
    while (!file_exists($dir . '/release') && microtime(true) < $deadline) {
        usleep(50000);
        clearstatcache();
    }
    @unlink($marker);
    return $response;
}, 10, 3);
