<?php
/**
 * Shared bootstrap for the CLI helpers of scripts/wordpress-e2e.sh: loads the WordPress of one
 * e2e site (WP_E2E_ROOT) into this PHP process. Include it at file top level (not inside a
 * function), so WordPress's globals stay global.
 *
 * Environment: WP_E2E_ROOT (site document root, required), WP_E2E_URL (http://127.0.0.1:PORT).
 */
if (PHP_SAPI !== 'cli') {
    http_response_code(404);
    exit;
}

function e2e_fail($message, $code = 1)
{
    fwrite(STDERR, $message . "\n");
    exit($code);
}

function e2e_out($data)
{
    echo json_encode($data, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
}

$e2e_root = getenv('WP_E2E_ROOT');
if (!$e2e_root || !is_file($e2e_root . '/wp-load.php')) {
    e2e_fail('WP_E2E_ROOT is not set to a WordPress root: ' . var_export($e2e_root, true), 2);
}
$e2e_url = parse_url(getenv('WP_E2E_URL') ?: 'http://127.0.0.1/');
$_SERVER['HTTP_HOST'] = $e2e_url['host'] . (isset($e2e_url['port']) ? ':' . $e2e_url['port'] : '');
$_SERVER['SERVER_NAME'] = $e2e_url['host'];
$_SERVER['SERVER_PORT'] = (string) ($e2e_url['port'] ?? 80);
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $e2e_root . '/index.php';
chdir($e2e_root);

require $e2e_root . '/wp-load.php';

/** The e2e admin user's id (the site has one administrator, login `admin`). */
function e2e_admin_id()
{
    $user = get_user_by('login', 'admin');
    return $user ? (int) $user->ID : 0;
}
