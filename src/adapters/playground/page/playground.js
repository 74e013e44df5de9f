/*
 * The playground page: Web Chat against this server's loopback Direct Line bridge, and the
 * identity switcher. Plain browser JavaScript, served as is (no build step).
 *
 * PlaygroundDirectLine is a DirectLineJS-compatible object (activity$, connectionStatus$,
 * postActivity, end) speaking the bridge's Direct Line 3.0 subset by polling. Unlike DirectLineJS's
 * own polling, it never gives up: when the server goes away (a restart) it reports "connecting",
 * which Web Chat shows as a reconnect, and carries on polling the same conversation until the server
 * is back; the transcript on the page stays as it was.
 */
(function () {
  'use strict';

  var UNINITIALIZED = 0;
  var CONNECTING = 1;
  var ONLINE = 2;
  var ENDED = 5;
  var POLL_MS = 1000;
  var REQUEST_TIMEOUT_MS = 30000;

  /** The smallest Observable Web Chat accepts: subscribe(observer | next, error, complete) → { unsubscribe, closed }. */
  function observable(subscribeFn) {
    return {
      subscribe: function (observerOrNext, onError, onComplete) {
        var observer = typeof observerOrNext === 'function' ? { next: observerOrNext, error: onError, complete: onComplete } : observerOrNext || {};
        var closed = false;
        var teardown;
        function cleanup() {
          var fn = teardown;
          teardown = undefined;
          if (typeof fn === 'function') fn();
        }
        var sink = {
          next: function (value) {
            if (!closed && observer.next) observer.next(value);
          },
          error: function (error) {
            if (closed) return;
            closed = true;
            if (observer.error) observer.error(error);
            cleanup();
          },
          complete: function () {
            if (closed) return;
            closed = true;
            if (observer.complete) observer.complete();
            cleanup();
          },
        };
        teardown = subscribeFn(sink);
        if (closed) cleanup();
        return {
          get closed() {
            return closed;
          },
          unsubscribe: function () {
            if (closed) return;
            closed = true;
            cleanup();
          },
        };
      },
    };
  }

  function request(method, url, body) {
    var controller = new AbortController();
    var timer = setTimeout(function () {
      controller.abort();
    }, REQUEST_TIMEOUT_MS);
    var init = { method: method, headers: { Accept: 'application/json' }, signal: controller.signal, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(url, init)
      .then(function (response) {
        return response.json().catch(function () {
          return {};
        }).then(function (json) {
          if (!response.ok) {
            var error = new Error((json && json.error && json.error.message) || 'HTTP ' + response.status);
            error.status = response.status;
            throw error;
          }
          return json;
        });
      })
      .finally(function () {
        clearTimeout(timer);
      });
  }

  function PlaygroundDirectLine(options) {
    var self = this;
    this.domain = options.domain;
    this.userId = options.userId;
    this.locale = options.locale;
    this.onStatus = options.onStatus || function () {};
    this.conversationId = undefined;
    this.watermark = '';
    this.status = UNINITIALIZED;
    this.ended = false;
    this.started = false;
    this.received = [];
    this.receivedIds = {};
    this.activityObservers = [];
    this.statusObservers = [];
    this.wake = undefined;

    this.connectionStatus$ = observable(function (sink) {
      self.statusObservers.push(sink);
      sink.next(self.status);
      return function () {
        self.statusObservers = self.statusObservers.filter(function (s) {
          return s !== sink;
        });
      };
    });

    // Every subscriber gets what was received so far, then what comes next (Web Chat subscribes more
    // than once, e.g. again after a reconnect, and drops activities it already has by id).
    this.activity$ = observable(function (sink) {
      self.activityObservers.push(sink);
      self.received.forEach(function (activity) {
        sink.next(activity);
      });
      if (!self.started) {
        self.started = true;
        self.run();
      }
      return function () {
        self.activityObservers = self.activityObservers.filter(function (s) {
          return s !== sink;
        });
      };
    });
  }

  PlaygroundDirectLine.prototype.setStatus = function (status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus(status);
    this.statusObservers.slice().forEach(function (sink) {
      sink.next(status);
    });
  };

  PlaygroundDirectLine.prototype.emit = function (activity) {
    if (this.receivedIds[activity.id]) {
      this.received = this.received.filter(function (a) {
        return a.id !== activity.id;
      });
    }
    this.receivedIds[activity.id] = true;
    this.received.push(activity);
    this.activityObservers.slice().forEach(function (sink) {
      sink.next(activity);
    });
  };

  PlaygroundDirectLine.prototype.sleep = function (ms) {
    var self = this;
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      self.wake = done;
    });
  };

  PlaygroundDirectLine.prototype.conversationUrl = function (suffix) {
    return this.domain + '/conversations/' + encodeURIComponent(this.conversationId) + (suffix || '');
  };

  PlaygroundDirectLine.prototype.run = async function () {
    var failures = 0;
    this.setStatus(CONNECTING);
    while (!this.ended) {
      try {
        if (!this.conversationId) {
          var conversation = await request('POST', this.domain + '/conversations', { user: { id: this.userId }, locale: this.locale });
          this.conversationId = conversation.conversationId;
        }
        var group = await request('GET', this.conversationUrl('/activities?watermark=' + encodeURIComponent(this.watermark)));
        if (this.ended) break;
        failures = 0;
        this.setStatus(ONLINE);
        if (group.watermark) this.watermark = group.watermark;
        for (var i = 0; i < (group.activities || []).length; i++) this.emit(group.activities[i]);
      } catch (error) {
        if (this.ended) break;
        failures++;
        // The conversation is unknown (it should never be): start it again.
        if (error && error.status === 404) this.conversationId = undefined;
        // Server gone (a restart) or refusing: Web Chat shows "connecting" until a poll succeeds again.
        if (this.status === ONLINE || this.status === UNINITIALIZED) this.setStatus(CONNECTING);
      }
      await this.sleep(failures ? Math.min(250 * Math.pow(2, failures), 3000) : POLL_MS);
    }
  };

  PlaygroundDirectLine.prototype.postActivity = function (activity) {
    var self = this;
    return observable(function (sink) {
      var cancelled = false;
      if (!self.conversationId) {
        sink.error(new Error('not connected'));
        return undefined;
      }
      request('POST', self.conversationUrl('/activities'), activity).then(
        function (result) {
          if (cancelled) return;
          sink.next(result.id);
          sink.complete();
          // The bot has answered by now: fetch the replies without waiting for the next poll.
          if (self.wake) self.wake();
        },
        function (error) {
          if (!cancelled) sink.error(error);
        },
      );
      return function () {
        cancelled = true;
      };
    });
  };

  PlaygroundDirectLine.prototype.end = function () {
    this.ended = true;
    if (this.wake) this.wake();
    this.setStatus(ENDED);
  };

  // ── The page ────────────────────────────────────────────────────────────────────────────────────

  var select = document.getElementById('identity');
  var chat = document.getElementById('chat');
  var connection = document.getElementById('connection');
  var skip = document.getElementById('skip-to-chat');
  var current;

  var statusText = {};
  statusText[CONNECTING] = 'Connecting…';
  statusText[ONLINE] = 'Connected';
  statusText[ENDED] = '';

  function identityFromOption(option) {
    return { key: option.value, userId: option.getAttribute('data-user-id'), name: option.getAttribute('data-name'), label: option.textContent };
  }

  function initials(name) {
    return name
      .split(/\s+/)
      .map(function (part) {
        return part.charAt(0);
      })
      .join('')
      .slice(0, 2)
      .toUpperCase();
  }

  function connect(identity) {
    if (current) {
      current.directLine.end();
      current.element.remove();
    }
    var element = document.createElement('div');
    element.className = 'webchat';
    element.setAttribute('data-identity', identity.key);
    chat.appendChild(element);
    var directLine = new PlaygroundDirectLine({
      domain: '/v3/directline',
      userId: identity.userId,
      locale: 'en-GB',
      onStatus: function (status) {
        if (current && current.directLine !== directLine) return;
        connection.textContent = status === CONNECTING && directLine.conversationId ? 'Reconnecting…' : statusText[status] || '';
      },
    });
    current = { directLine: directLine, element: element, identity: identity };
    window.WebChat.renderWebChat(
      {
        directLine: directLine,
        userID: identity.userId,
        username: identity.name,
        locale: 'en-GB',
        styleOptions: {
          hideUploadButton: true,
          botAvatarInitials: 'eS',
          userAvatarInitials: initials(identity.name),
          sendTimeout: 30000,
        },
      },
      element,
    );
    try {
      sessionStorage.setItem('playground-identity', identity.key);
    } catch (error) {
      // Storage may be off; the URL still says who you are.
    }
    history.replaceState(null, '', '?as=' + encodeURIComponent(identity.key));
  }

  function sendBox() {
    return document.querySelector('[data-id="webchat-sendbox-input"]') || document.querySelector('.webchat__send-box-text-box__input');
  }

  skip.addEventListener('click', function (event) {
    var input = sendBox();
    if (!input) return;
    event.preventDefault();
    input.focus();
  });

  select.addEventListener('change', function () {
    connect(identityFromOption(select.options[select.selectedIndex]));
  });

  var wanted = new URLSearchParams(location.search).get('as');
  try {
    wanted = wanted || sessionStorage.getItem('playground-identity');
  } catch (error) {
    // no storage
  }
  for (var i = 0; i < select.options.length; i++) {
    if (select.options[i].value === wanted) select.selectedIndex = i;
  }
  connect(identityFromOption(select.options[select.selectedIndex]));

  // For tests and curious developers.
  window.playground = {
    get directLine() {
      return current && current.directLine;
    },
    get identity() {
      return current && current.identity;
    },
  };
})();
