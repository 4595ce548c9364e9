<?php
/**
 * Plugin Name: Bench request log (BENCH ONLY)
 * Description: Installed by bench/ into its own throwaway WordPress sites. Appends one line per
 * web request to ../logs/bench-requests.log when the request ends: "METHOD URI MILLISECONDS",
 * so the benchmarks can count exactly which requests WordPress received and how long WordPress
 * itself took for them. Never install it on a real site.
 */
if (PHP_SAPI !== 'cli' && isset($_SERVER['REQUEST_METHOD'], $_SERVER['REQUEST_URI'])) {
    register_shutdown_function(function () {
        $started = $_SERVER['REQUEST_TIME_FLOAT'] ?? microtime(true);
        @file_put_contents(
            dirname(ABSPATH) . '/logs/bench-requests.log',
            $_SERVER['REQUEST_METHOD'] . ' ' . str_replace(' ', '%20', $_SERVER['REQUEST_URI']) . ' '
                . round((microtime(true) - $started) * 1000, 1) . "\n",
            FILE_APPEND | LOCK_EX
        );
    });
}
